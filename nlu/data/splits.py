"""The train, dev and test examples that a `DataConfig` names, in any format.

`data.name` is a benchmark-style dataset (split folders of seq.in / seq.out / label); `data.train`
(with optional `data.dev` and `data.test`) is a file or folder in any format that
`nlu.data.formats` reads.
With no dev data, a seeded split of train, stratified by intent, is held out as dev.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nlu.config import DataConfig
from nlu.data.formats import read_examples
from nlu.data.seqio import DATA_DIR_ENV, SEQIO_FILES, data_dir, read_seqio, resolve_split
from nlu.schema import Example

SPLIT_FOLDERS = ("train", "valid", "dev", "test")


@dataclass(frozen=True)
class Splits:
    """Examples of each split; `dev_split` says how dev was held out of train, if it was."""

    train: list[Example]
    dev: list[Example]
    test: list[Example] | None
    dev_split: dict[str, Any] | None = None


def load_splits(cfg: DataConfig) -> Splits:
    """Read the splits `cfg` names; hold a dev split out of train when there is no dev data.

    Raises:
        FileNotFoundError, ValueError: missing or bad data, with the file and line.
    """
    if cfg.train:
        train = read_examples(cfg.train, cfg.format, hf=cfg.hf)
        dev = read_examples(cfg.dev, cfg.format, hf=cfg.hf) if cfg.dev else None
        test = read_examples(cfg.test, cfg.format, hf=cfg.hf) if cfg.test else None
    elif cfg.dev or cfg.test:
        raise ValueError(
            "data.dev and data.test go with data.train: expected data.train to be set, found "
            f"only data.name {cfg.name!r}"
        )
    else:
        train = read_seqio(resolve_split(cfg.name, cfg.train_split))
        dev = _optional_split(cfg.name, cfg.dev_split)
        test = _optional_split(cfg.name, cfg.test_split)
    if dev is not None:
        return Splits(train, dev, test)
    train, dev = stratified_split(train, cfg.dev_fraction, cfg.split_seed)
    record = {
        "from": "train",
        "fraction": cfg.dev_fraction,
        "seed": cfg.split_seed,
        "stratified_by": "intent",
        "train_examples": len(train),
        "dev_examples": len(dev),
    }
    return Splits(train, dev, test, record)


def data_files(cfg: DataConfig) -> list[Path]:
    """The files that `load_splits(cfg)` reads, for the record (a folder: every file in it).
    A name that is no local path (a Hugging Face hub dataset) has none."""
    if cfg.train:
        paths = [Path(p) for p in (cfg.train, cfg.dev, cfg.test) if p]
    else:
        paths = []
        for split in (cfg.train_split, cfg.dev_split, cfg.test_split):
            try:
                paths.append(resolve_split(cfg.name, split))
            except FileNotFoundError:
                pass  # no such split: load_splits says so where it matters
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(f for f in path.rglob("*") if f.is_file()))
        elif path.is_file():
            files.append(path)
    return files


def _optional_split(name: str, split: str) -> list[Example] | None:
    try:
        folder = resolve_split(name, split)
    except FileNotFoundError:
        return None  # no such split folder: fine for dev (split from train) and test
    return read_seqio(folder)


def stratified_split(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, dev): about `fraction` of each intent's examples, drawn with `seed`, go to dev.

    Each intent gets its share of the dev size (largest remainders first) and keeps at least one
    example in train; both parts keep the original order.

    Raises:
        ValueError: `fraction` outside (0, 1), or fewer than two examples.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"data.dev_fraction: expected a number between 0 and 1, found {fraction}")
    if len(examples) < 2:
        raise ValueError(
            f"expected at least 2 training examples to hold out a dev split, found {len(examples)}"
        )
    by_intent: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(examples):
        by_intent[e.intent].append(i)
    intents = sorted(by_intent)
    target = max(1, round(len(examples) * fraction))
    exact = {intent: len(by_intent[intent]) * fraction for intent in intents}
    quota = {intent: int(exact[intent]) for intent in intents}
    for intent in sorted(intents, key=lambda k: (quota[k] - exact[k], k)):
        if sum(quota.values()) >= target:
            break
        quota[intent] += 1
    rng = random.Random(seed)
    held_out: set[int] = set()
    for intent in intents:
        indices = list(by_intent[intent])
        rng.shuffle(indices)
        held_out.update(indices[: min(quota[intent], len(indices) - 1)])
    if not held_out:  # every intent has a single example: take one anyway
        held_out.add(rng.randrange(len(examples)))
    train = [e for i, e in enumerate(examples) if i not in held_out]
    dev = [e for i, e in enumerate(examples) if i in held_out]
    return train, dev


def split_paths(path: str | Path) -> list[Path]:
    """The split folders of a dataset folder (train, valid, dev, test), or `[path]` itself.

    A bare name that is not a file or folder here is looked up under `NLU_DATA_DIR`.
    """
    path = Path(path)
    if not path.exists() and len(path.parts) == 1 and os.environ.get(DATA_DIR_ENV):
        path = data_dir() / path
    if not path.is_dir() or all((path / n).is_file() for n in SEQIO_FILES):
        return [path]
    found = [path / n for n in SPLIT_FOLDERS if (path / n).is_dir()]
    return found or [path]
