"""What made a run: code, data, libraries, machine and seed, so a number in a table can be traced.

Every start and every `--resume` of a run adds one record to `provenance.json` in the run
directory; the exported model's info.json carries the same list. Data files are named relative
to `NLU_DATA_DIR` when they lie under it, so a record names no machine's paths for the
benchmarks.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

import nlu
from nlu.config import ExperimentConfig
from nlu.data.seqio import DATA_DIR_ENV
from nlu.data.splits import data_files
from nlu.files import write_text_atomic

PROVENANCE = "provenance.json"
LIBRARIES = ("torch", "pytorch-lightning", "pytorch-crf", "datasets", "numpy")


def record(cfg: ExperimentConfig, processes: int, resumed_from_epoch: int | None) -> dict[str, Any]:
    """This session's record: when, nlu's version and git commit, the data files' SHA-256,
    library versions, CPU capability, threads and processes, the seed, and whether it resumed."""
    return {
        "started": datetime.now().isoformat(timespec="seconds"),
        "resumed_from_epoch": resumed_from_epoch,  # 1-based, the last whole epoch; None: a start
        "nlu": nlu.__version__,
        "git": git_state(Path(nlu.__file__).parent.parent),
        "data_files": {_data_name(f): sha256(f) for f in data_files(cfg.data)},
        "versions": {"python": platform.python_version(), **_versions()},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "processes": processes,
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "seed": cfg.train.seed,
    }


def append(run_dir: Path, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Add `entry` to the run's provenance.json (written atomically); return the whole list."""
    path = run_dir / PROVENANCE
    entries = json.loads(path.read_text()) if path.is_file() else []
    entries.append(entry)
    write_text_atomic(path, json.dumps(entries, indent=2) + "\n")
    return entries


def git_state(folder: Path) -> dict[str, Any] | None:
    """{"commit": ..., "dirty": ...} of the git checkout whose top folder is `folder`; None
    without git or such a checkout (an installed package, even one inside another project's
    checkout, has none)."""
    try:
        if Path(_git(folder, "rev-parse", "--show-toplevel")).resolve() != folder.resolve():
            return None
        commit = _git(folder, "rev-parse", "HEAD")
        changes = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(changes)}


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _data_name(path: Path) -> str:
    root = os.environ.get(DATA_DIR_ENV)
    if root:
        try:
            return f"${DATA_DIR_ENV}/{path.resolve().relative_to(Path(root).resolve()).as_posix()}"
        except ValueError:
            pass  # not under it
    return str(path)


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found
