import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import TINY_OVERRIDES

runner = CliRunner()


def invoke(*args, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


def test_tag_prints_intent_and_slots(trained):
    result = invoke("tag", "--model", str(trained.model_dir), "fly from Boston to London")
    assert result.exit_code == 0, result.output
    assert "intent: flight" in result.output
    assert "toloc.city_name" in result.output and "London" in result.output


def test_tag_json_is_rasa_shaped(trained):
    text = "Cheapest fare from London to New York!"
    result = invoke("tag", "--json", "--model", str(trained.model_dir), text)
    assert result.exit_code == 0, result.output
    parse = json.loads(result.output)
    assert set(parse) == {"text", "intent", "intent_ranking", "entities"}
    assert set(parse["intent"]) == {"name", "confidence"} and parse["text"] == text
    for e in parse["entities"]:
        assert set(e) == {"entity", "value", "start", "end", "confidence_entity", "extractor"}
        assert text[e["start"] : e["end"]] == e["value"]
    assert {"entity": "toloc.city_name", "value": "New York"}.items() <= parse["entities"][
        -1
    ].items()


def test_tag_uses_nlu_model_env(trained, monkeypatch):
    monkeypatch.setenv("NLU_MODEL", str(trained.run_dir))
    assert invoke("tag", "taxi in boston").exit_code == 0


def test_evaluate_prints_scores_and_writes_json(trained, tiny_dir, tmp_path):
    out = tmp_path / "report.json"
    result = invoke(
        "evaluate",
        "--model",
        str(trained.model_dir),
        "--data",
        str(tiny_dir),
        "--split",
        "train",
        "--json",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "F1 100.00" in result.output and "sentence   accuracy 100.00" in result.output
    assert "per slot" in result.output and "toloc.city_name" in result.output
    assert json.loads(out.read_text())["slot"]["f1"] == 100.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tag", "--model", "/no/such/model", "hi"], "no such model; train one with `nlu train`"),
        (["evaluate", "--model", "/no/such/model"], "no such model"),
        (["train", "/no/such.yaml"], "config file not found"),
        (
            ["train", "configs/atis_bilstm_crf.yaml", "--set", "model.hiden=3"],
            "unknown key model.hiden; valid keys",
        ),
    ],
)
def test_user_errors_are_one_line_exit_1(args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_dataset_is_one_line(trained, monkeypatch, tmp_path):
    monkeypatch.setenv("NLU_DATA_DIR", str(tmp_path))
    result = invoke("evaluate", "--model", str(trained.model_dir), "--data", "atis")
    assert result.exit_code == 1 and "no such data folder" in result.output


def test_train_from_the_cli(tmp_path):
    args = [
        "train",
        "configs/atis_bilstm_crf.yaml",
        *[a for o in TINY_OVERRIDES for a in ("--set", o)],
        "--set",
        "train.max_epochs=1",
        "--set",
        f"runs_dir={tmp_path}",
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert (
        "dev: slot F1" in result.output
        and (tmp_path / "latest" / "model" / "model.safetensors").is_file()
    )
