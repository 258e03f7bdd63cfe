"""Read finished runs, group runs of one config, and aggregate seeds into mean ± std.

A run directory (written by `nlu train`) holds `metrics.json` (dev/test scores) and
`model/config.yaml`. A seeds aggregate directory (written by `nlu train --seeds`) holds
`aggregate.json`, which names its runs and carries their scores.
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from nlu.config import config_from_dict
from nlu.files import write_text_atomic

METRICS_FILE = "metrics.json"
AGGREGATE_FILE = "aggregate.json"
AGGREGATE_MARKDOWN = "aggregate.md"
METRICS = (
    "slot_f1",
    "intent_accuracy",
    "intent_accuracy_any",
    "sentence_accuracy",
    "slot_f1_unseen",  # spans holding a word unseen in training (runs since 62d327a)
    "intent_f1",  # over single intents, and the set and every tag (runs since this field)
    "overall_accuracy",
)
# Fields that do not change what a run learns: runs differing only here are one config.
IGNORED_FIELDS = ("train.seed", "runs_dir", "train.progress_bar", "train.tensorboard")


@dataclass(frozen=True)
class RunSummary:
    """The scores of one finished run and the config it was trained with."""

    path: Path
    name: str
    seed: int | None
    metrics: dict[str, dict[str, float]]  # split -> metric -> value
    config: dict[str, Any] = field(default_factory=dict)  # flat "section.field" -> value


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (n - 1; 0 for one value) of `n` values."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}" if self.n > 1 else f"{self.mean:.2f}"


def mean_std(values: Sequence[float]) -> Stat:
    """Mean ± sample standard deviation, as papers report seeds."""
    if not values:
        raise ValueError("expected at least one value to average, found none")
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Stat(statistics.mean(values), std, len(values))


def parse_seeds(text: str) -> list[int]:
    """`"1,2,3"` -> [1, 2, 3]; distinct integers only."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(
            f"--seeds: expected comma-separated integers such as 1,2,3, found {text!r}"
        ) from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: expected distinct seeds, found {text!r}")
    return seeds


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"seed": 1}} -> {"train.seed": 1}."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupt JSON ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "model" / "config.yaml"
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping, found {type(data).__name__}")
    try:
        # Fields added since the run was made get their defaults, so an old run and a new one
        # of the same settings count as one config.
        return flatten(config_from_dict(data).to_dict())
    except ValueError:
        data.pop("format_version", None)
        return flatten(data)  # written by another version of nlu: compare it as it is


def read_run(run_dir: str | os.PathLike) -> RunSummary:
    """The run in `run_dir` (its metrics.json, and model/config.yaml when present)."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; expected a run directory made by nlu train")
    info = _read_json(path)
    metrics = info.get("metrics")
    if not isinstance(metrics, dict) or not isinstance(info.get("name"), str):
        raise ValueError(f"{path}: expected 'name' and 'metrics' fields, found {sorted(info)}")
    config = _read_config(run_dir)
    seed = config.get("train.seed")
    return RunSummary(
        run_dir, info["name"], seed if isinstance(seed, int) else None, metrics, config
    )


def read_aggregate(aggregate_dir: str | os.PathLike) -> list[RunSummary]:
    """The runs a seeds aggregate names, with the scores it recorded for them."""
    aggregate_dir = Path(aggregate_dir)
    data = _read_json(aggregate_dir / AGGREGATE_FILE)
    try:
        return [
            RunSummary(
                aggregate_dir.parent / run["run_dir"],
                data["name"],
                run["seed"],
                run["metrics"],
                data.get("config", {}),
            )
            for run in data["runs"]
        ]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{aggregate_dir / AGGREGATE_FILE}: missing field {e}") from None


def read_runs(paths: Iterable[str | os.PathLike]) -> list[RunSummary]:
    """Runs from run directories, seeds aggregates, or folders of either (one level down).

    A run reached twice (say through runs/latest and by name) counts once.
    """
    runs: dict[Path, RunSummary] = {}
    for path in map(Path, paths):
        for run in _runs_at(path):
            runs.setdefault(run.path.resolve(), run)
    return list(runs.values())


def _runs_at(path: Path) -> list[RunSummary]:
    if (path / AGGREGATE_FILE).is_file():
        return read_aggregate(path)
    if (path / METRICS_FILE).is_file():
        return [read_run(path)]
    children = sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []
    found = [run for child in children for run in _runs_at_shallow(child)]
    if not found:
        raise FileNotFoundError(
            f"{path}: expected a run directory ({METRICS_FILE}), a seeds aggregate "
            f"({AGGREGATE_FILE}) or a folder of them, found none"
        )
    return found


def _runs_at_shallow(path: Path) -> list[RunSummary]:
    if (path / AGGREGATE_FILE).is_file():
        return read_aggregate(path)
    return [read_run(path)] if (path / METRICS_FILE).is_file() else []


@dataclass(frozen=True)
class RunGroup:
    """Runs of one config (same name, same fields apart from `IGNORED_FIELDS`)."""

    label: str
    runs: list[RunSummary]

    def stat(self, split: str, metric: str) -> Stat | None:
        values = [r.metrics[split][metric] for r in self.runs if metric in r.metrics.get(split, {})]
        return mean_std(values) if values else None

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]


def _fingerprint(run: RunSummary) -> str:
    kept = {k: v for k, v in run.config.items() if k not in IGNORED_FIELDS}
    return json.dumps(kept, sort_keys=True, default=str)


def group_runs(runs: Sequence[RunSummary]) -> list[RunGroup]:
    """Group runs by config, in order of first appearance; seeds sorted within a group.

    Groups that share a name but differ in config are labelled with the fields that differ.
    """
    groups: dict[tuple[str, str], list[RunSummary]] = {}
    for run in runs:
        groups.setdefault((run.name, _fingerprint(run)), []).append(run)
    labelled = []
    for (name, _), members in groups.items():
        siblings = [g[0] for (n, _), g in groups.items() if n == name]
        label = name + _differences(members[0], siblings)
        labelled.append(RunGroup(label, sorted(members, key=lambda r: (r.seed is None, r.seed))))
    return labelled


def _differences(run: RunSummary, siblings: list[RunSummary]) -> str:
    if len(siblings) < 2:
        return ""
    keys = sorted({k for s in siblings for k in s.config} - set(IGNORED_FIELDS))
    differing = [k for k in keys if len({repr(s.config.get(k)) for s in siblings}) > 1]
    return " [" + ", ".join(f"{k}={run.config.get(k)}" for k in differing) + "]"


def aggregate(runs: Sequence[RunSummary], base: Path | None = None) -> dict[str, Any]:
    """mean ± std of every split's metrics over runs of one config (the aggregate.json body).

    Run directories are recorded relative to `base` (where the aggregate folder is).
    """
    groups = group_runs(runs)
    if len(groups) != 1:
        labels = [g.label for g in groups]
        raise ValueError(f"expected runs of one config to aggregate, found {len(groups)}: {labels}")
    group = groups[0]
    splits = sorted({s for r in runs for s in r.metrics})
    stats = {
        split: {m: group.stat(split, m) for m in METRICS if group.stat(split, m) is not None}
        for split in splits
    }
    return {
        "name": group.runs[0].name,
        "created": datetime.now().isoformat(timespec="seconds"),
        "seeds": group.seeds,
        "mean": {s: {m: v.mean for m, v in ms.items()} for s, ms in stats.items()},
        "std": {s: {m: v.std for m, v in ms.items()} for s, ms in stats.items()},
        "runs": [
            {"run_dir": _relative(r.path, base), "seed": r.seed, "metrics": r.metrics}
            for r in group.runs
        ],
        "config": {k: v for k, v in group.runs[0].config.items() if k not in IGNORED_FIELDS},
    }


def _relative(path: Path, base: Path | None) -> str:
    if base is None:
        return str(path.resolve())
    return os.path.relpath(path.resolve(), base.resolve())


def aggregate_markdown(summary: dict[str, Any]) -> str:
    """The aggregate as a Markdown table: mean ± std, then each seed's value."""
    seeds = summary["seeds"]
    lines = [
        f"# {summary['name']}: {len(seeds)} seeds ({', '.join(map(str, seeds))})",
        "",
        "mean ± sample standard deviation (n - 1).",
        "",
        "| split | metric | mean ± std | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---|---|---:|" + "---:|" * len(seeds),
    ]
    for split, means in summary["mean"].items():
        for metric, mean in means.items():
            std = summary["std"][split][metric]
            values = [r["metrics"].get(split, {}).get(metric) for r in summary["runs"]]
            cells = " | ".join("" if v is None else f"{v:.2f}" for v in values)
            lines.append(f"| {split} | {metric} | {mean:.2f} ± {std:.2f} | {cells} |")
    return "\n".join(lines) + "\n"


def write_aggregate(runs: Sequence[RunSummary], out_dir: str | os.PathLike) -> Path:
    """Write aggregate.json and aggregate.md into `out_dir`; return `out_dir`."""
    out = Path(out_dir)
    summary = aggregate(runs, base=out.parent)
    write_text_atomic(out / AGGREGATE_FILE, json.dumps(summary, indent=2) + "\n")
    write_text_atomic(out / AGGREGATE_MARKDOWN, aggregate_markdown(summary))
    return out
