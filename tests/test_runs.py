"""Reading runs, grouping them by config, and mean ± std over seeds."""

import json
import statistics

import pytest

from nlu.analysis.runs import (
    aggregate,
    group_runs,
    mean_std,
    parse_seeds,
    read_aggregate,
    read_runs,
    write_aggregate,
)
from nlu.config import dump_config, load_config


def make_run(root, name, seed, slot_f1, overrides=()):
    """A run directory as nlu train leaves it, minus the weights."""
    run = root / f"{name}-seed{seed}"
    (run / "model").mkdir(parents=True)
    cfg = load_config(None, [f"name={name}", f"train.seed={seed}", *overrides])
    (run / "model" / "config.yaml").write_text(dump_config(cfg))
    metrics = {"test": {"slot_f1": slot_f1, "intent_accuracy": 90.0}, "dev": {"slot_f1": 99.0}}
    (run / "metrics.json").write_text(json.dumps({"name": name, "metrics": metrics}))
    return run


def test_parse_seeds():
    assert parse_seeds("1,2,3") == [1, 2, 3] and parse_seeds("7") == [7]
    with pytest.raises(ValueError, match="--seeds: expected comma-separated integers .* '1,a'"):
        parse_seeds("1,a")
    with pytest.raises(ValueError, match="--seeds: expected distinct seeds, found '1,1'"):
        parse_seeds("1,1")


def test_mean_std_is_the_sample_std():
    stat = mean_std([95.0, 96.0, 98.0])
    assert stat.mean == pytest.approx(96.333333) and stat.n == 3
    assert stat.std == pytest.approx(statistics.stdev([95.0, 96.0, 98.0]))
    assert str(stat) == "96.33 ± 1.53" and str(mean_std([1.0])) == "1.00"


def test_runs_of_one_config_group_and_other_configs_say_what_differs(tmp_path):
    runs = [
        make_run(tmp_path, "atis", 1, 95.0),
        make_run(tmp_path, "atis", 2, 96.0),
        make_run(tmp_path / "other", "atis", 3, 90.0, ["train.lr=0.01"]),
        make_run(tmp_path, "snips", 1, 80.0),
    ]
    (tmp_path / "latest").symlink_to(runs[1].name)
    # Seed 2 is reached twice (by name and through latest) and counts once; the folder is
    # expanded one level down.
    found = read_runs([tmp_path, runs[1], runs[2]])
    groups = {g.label: g for g in group_runs(found)}
    assert set(groups) == {"atis [train.lr=0.002]", "atis [train.lr=0.01]", "snips"}
    atis = groups["atis [train.lr=0.002]"]
    assert atis.seeds == [1, 2] and str(atis.stat("test", "slot_f1")) == "95.50 ± 0.71"
    assert atis.stat("dev", "intent_accuracy") is None


def test_aggregate_round_trips_through_its_folder(tmp_path):
    runs = read_runs([make_run(tmp_path, "atis", s, f1) for s, f1 in ((1, 95.0), (3, 97.0))])
    out = write_aggregate(runs, tmp_path / "atis-seeds1-3")
    summary = json.loads((out / "aggregate.json").read_text())
    assert summary["seeds"] == [1, 3] and summary["mean"]["test"]["slot_f1"] == 96.0
    assert summary["std"]["test"]["slot_f1"] == pytest.approx(statistics.stdev([95.0, 97.0]))
    assert [r["run_dir"] for r in summary["runs"]] == ["atis-seed1", "atis-seed3"]
    assert "| test | slot_f1 | 96.00 ± 1.41 | 95.00 | 97.00 |" in (out / "aggregate.md").read_text()
    again = read_aggregate(out)
    assert [r.path.resolve() for r in again] == [r.path.resolve() for r in runs]
    assert group_runs(read_runs([out]))[0].seeds == [1, 3]


def test_aggregating_two_configs_or_nothing_is_an_error(tmp_path):
    runs = read_runs([make_run(tmp_path, "a", 1, 1.0), make_run(tmp_path, "b", 1, 1.0)])
    with pytest.raises(ValueError, match=r"expected runs of one config to aggregate, found 2"):
        aggregate(runs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: expected a run directory"):
        read_runs([tmp_path / "empty"])
