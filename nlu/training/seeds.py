"""`train_seeds(cfg, seeds)`: one run per seed, then their mean ± std in an aggregate folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from nlu.analysis.runs import read_run, write_aggregate
from nlu.config import ExperimentConfig
from nlu.training.train import TrainResult, train


@dataclass(frozen=True)
class SeedsResult:
    """The run of each seed, and the folder holding aggregate.json and aggregate.md."""

    results: list[TrainResult]
    aggregate_dir: Path


def train_seeds(cfg: ExperimentConfig, seeds: Sequence[int]) -> SeedsResult:
    """Train `cfg` once per seed (each a normal run directory), then aggregate them.

    The aggregate goes to `<runs_dir>/<name>-<date>-<time>-seeds<1-2-3>/`.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"expected one or more distinct seeds, found {list(seeds)}")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    results = [
        train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=seed)))
        for seed in seeds
    ]
    out = Path(cfg.runs_dir) / f"{cfg.name}-{stamp}-seeds{'-'.join(map(str, seeds))}"
    if all(r.rank_zero for r in results):  # under DDP, rank 0 alone writes the aggregate
        write_aggregate([read_run(r.run_dir) for r in results], out)
    return SeedsResult(results, out)
