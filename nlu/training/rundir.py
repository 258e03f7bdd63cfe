"""The run directory: where a training run writes, and the `runs/latest` link to it."""

from __future__ import annotations

import csv
import io
import os
from datetime import datetime
from pathlib import Path

from nlu.config import ExperimentConfig
from nlu.files import write_text_atomic

# The resolved config a run records when it starts, which `--resume` reads back (not
# config.yaml: that name marks a model directory, see archive.resolve_model_dir).
RUN_CONFIG = "train_config.yaml"


def is_worker_process() -> bool:
    """Whether this is a rank > 0 of a distributed run, which writes nothing."""
    # Lightning's DDP launcher starts ranks > 0 as new processes with LOCAL_RANK and NODE_RANK
    # set; torchrun and SLURM set RANK (SLURM_PROCID) for every process.
    names = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
    return any(int(os.environ.get(name, "0")) > 0 for name in names)


def new_run_dir(cfg: ExperimentConfig) -> Path:
    """A new `runs_dir/<name>-<time>-seed<seed>` folder (made by rank 0 only)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.runs_dir) / f"{cfg.name}-{stamp}-seed{cfg.train.seed}"
    if is_worker_process():
        return base
    run_dir, k = base, 1
    while run_dir.exists():
        k += 1
        run_dir = base.with_name(f"{base.name}-{k}")
    run_dir.mkdir(parents=True)
    return run_dir


def point_latest(run_dir: Path) -> None:
    """Make `runs/latest` a relative symlink to `run_dir`, swapped in atomically."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)


def earlier_log(path: Path, last_epoch: int) -> list[dict[str, str]]:
    """The rows of Lightning's CSV log up to `last_epoch`, for `merge_log` once a resumed run
    has written its own (its logger starts the file again, and the rows of a cut-short epoch
    are logged again)."""
    if not path.is_file():
        return []
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    return [r for r in rows if not r.get("epoch") or int(float(r["epoch"])) <= last_epoch]


def merge_log(path: Path, earlier: list[dict[str, str]]) -> None:
    """Put `earlier` rows back in front of the resumed run's log."""
    if not earlier:
        return
    later: list[dict[str, str]] = []
    if path.is_file():
        with path.open(newline="") as file:
            later = list(csv.DictReader(file))
    rows = earlier + later
    columns = list(dict.fromkeys(k for row in rows for k in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, text.getvalue())
