"""Training curves: per-epoch values read from Lightning's CSV log, drawn as `curves.png`.

Lightning's `CSVLogger` writes one row per logging event: step rows (`train_loss_step`) and
epoch rows (`train_loss_epoch`, `val_slot_f1`, ...), with blanks for what a row does not hold.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

from nlu.files import write_bytes_atomic

LOG_FILE = Path("logs") / "metrics.csv"
CURVES_FILE = "curves.png"


@dataclass(frozen=True)
class EpochLog:
    """One value per epoch for each metric logged once per epoch (None where it is missing)."""

    epochs: list[int]  # 1-based, as people count epochs
    columns: dict[str, list[float | None]]


def read_epoch_log(path: str | os.PathLike) -> EpochLog:
    """The per-epoch metrics of a Lightning CSV log; per-step columns (`*_step`) are left out.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no `epoch` column, or a value that is not a number (the message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; expected the CSV log of a run (logs/metrics.csv)"
        )
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "epoch" not in rows[0]:
        found = rows[0] if rows else "an empty file"
        raise ValueError(f"{path}:1: expected a header with an 'epoch' column, found {found}")
    header = rows[0]
    wanted = [c for c in header if c not in ("epoch", "step") and not c.endswith("_step")]
    by_epoch: dict[int, dict[str, float]] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        values = dict(zip(header, row))
        epoch = int(_number(path, lineno, "epoch", values.get("epoch", "")))
        kept = by_epoch.setdefault(epoch, {})
        for column in wanted:
            if values.get(column, ""):
                kept[column] = _number(path, lineno, column, values[column])  # last one wins
    epochs = sorted(by_epoch)
    columns = {c: [by_epoch[e].get(c) for e in epochs] for c in wanted}
    return EpochLog(
        [e + 1 for e in epochs], {c: v for c, v in columns.items() if any(x is not None for x in v)}
    )


def _number(path: Path, lineno: int, column: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(
            f"{path}:{lineno}: expected a number in column {column!r}, found {text!r}"
        ) from None


def write_curves(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Draw `run_dir/logs/metrics.csv` into `out` (default `run_dir/curves.png`); return it.

    The best epoch is marked when `run_dir/metrics.json` names it.
    """
    from nlu.eval.plots import curves_png  # matplotlib loads here

    run_dir = Path(run_dir)
    log = read_epoch_log(run_dir / LOG_FILE)
    if not log.epochs:
        raise ValueError(f"{run_dir / LOG_FILE}: expected at least one epoch, found none")
    info = _run_info(run_dir)
    best = info.get("best_epoch")
    name = run_dir.resolve().name  # runs/latest is a symlink: show the run it points to
    title = f"{info.get('name', name)} ({name})"
    png = curves_png(
        log.epochs, log.columns, best + 1 if isinstance(best, int) and best >= 0 else None, title
    )
    return write_bytes_atomic(Path(out) if out is not None else run_dir / CURVES_FILE, png)


def _run_info(run_dir: Path) -> dict:
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupt ({e})") from None
    return info if isinstance(info, dict) else {}
