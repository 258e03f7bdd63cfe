from pathlib import Path

import pytest

from nlu.config import ExperimentConfig, config_from_dict, dump_config, load_config

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_open_with_the_command(path):
    cfg = load_config(path)
    assert isinstance(cfg, ExperimentConfig)
    assert path.read_text().startswith(f"# Train: nlu train configs/{path.name}")


def test_overrides_are_typed():
    cfg = load_config(
        None,
        ["model.hidden_dim=64", "model.tag_head=softmax", "train.lr=1e-3", "data.lowercase=false"],
    )
    assert cfg.model.hidden_dim == 64 and cfg.model.tag_head == "softmax"
    assert cfg.train.lr == pytest.approx(1e-3) and cfg.data.lowercase is False


def test_unknown_key_lists_valid_keys():
    with pytest.raises(
        ValueError, match=r"unknown key model\.hiden_dim; valid keys: .*model\.hidden_dim"
    ):
        load_config(None, ["model.hiden_dim=64"])
    with pytest.raises(
        ValueError, match=r"unknown key trian; valid keys: name, runs_dir, data, model, train"
    ):
        load_config(None, ["trian.lr=1"])


def test_bad_values_say_what_is_valid():
    with pytest.raises(
        ValueError, match=r"model\.tag_head: expected one of 'crf', 'softmax', found 'hmm'"
    ):
        load_config(None, ["model.tag_head=hmm"])
    with pytest.raises(ValueError, match=r"model\.hidden_dim: expected int, found 'big'"):
        load_config(None, ["model.hidden_dim=big"])
    with pytest.raises(ValueError, match="expected an override of the form key.sub=value"):
        load_config(None, ["model.hidden_dim"])


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  hidden_dim: [1, 2\n")
    with pytest.raises(ValueError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(path)


def test_dump_round_trips():
    import yaml

    cfg = load_config(None, ["model.num_layers=2", "train.devices=[0, 1]"])
    assert config_from_dict(yaml.safe_load(dump_config(cfg))) == cfg
