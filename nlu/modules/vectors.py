"""Pretrained word vectors from a word2vec or GloVe text file, kept only for a vocabulary.

Only training reads these files: a saved model carries the loaded rows in its own weights.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from nlu.vocab import PAD_ID, Vocab


@dataclass(frozen=True)
class PretrainedVectors:
    """The rows of a vector file for the words of one vocabulary."""

    path: str
    vectors: Tensor  # (V, D), zero where the file lacks the word
    found: Tensor  # (V,) bool; PAD is never looked up

    @property
    def num_found(self) -> int:
        return int(self.found.sum())

    @property
    def num_words(self) -> int:
        """Vocabulary entries looked up: all but PAD."""
        return len(self.found) - 1


def read_vectors(path: str | os.PathLike, vocab: Vocab, dim: int) -> PretrainedVectors:
    """Stream a word2vec/GloVe text file and keep the rows of `vocab`'s words.

    A vocabulary word takes the row of the same word; failing that, the first row whose word is
    the same ignoring case ("Boston" for "boston"). word2vec's optional first line "count dim"
    is recognised. Memory holds `len(vocab) * dim` numbers, never the file; only the rows kept
    are parsed as numbers, the others are only checked to have `dim` values.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty file, a row or header without `dim` values, or a value of a kept row
            that is not a finite number; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: vector file not found")
    by_lower: dict[str, list[int]] = {}
    for i, word in enumerate(vocab.itos):
        if i != PAD_ID:
            by_lower.setdefault(word.lower(), []).append(i)
    vectors = torch.zeros(len(vocab), dim)  # (V, D)
    found: set[int] = set()
    exact: set[int] = set()
    num_rows = 0
    for lineno, word, values in _rows(path, dim):
        num_rows += 1
        # An exact match replaces a case-insensitive one; the first of either kind stays.
        wanted = [
            i
            for i in by_lower.get(word.lower(), [])
            if i not in exact and (i not in found or vocab.itos[i] == word)
        ]
        if not wanted:
            continue
        row = torch.tensor(_numbers(values, path, lineno))  # (D,)
        for i in wanted:
            vectors[i] = row
            found.add(i)
            if vocab.itos[i] == word:
                exact.add(i)
    if num_rows == 0:
        raise ValueError(f"{path}: expected word vectors, found an empty file")
    mask = torch.zeros(len(vocab), dtype=torch.bool)  # (V,)
    mask[sorted(found)] = True
    return PretrainedVectors(str(path), vectors, mask)


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit()


def _rows(path: Path, dim: int) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, word, value strings) of each row, after checking it has `dim` values."""
    # Some published files have a few invalid UTF-8 bytes; those words just never match.
    with path.open(encoding="utf-8", errors="replace") as lines:
        for lineno, line in enumerate(lines, start=1):
            fields = line.rstrip().split(" ")
            if lineno == 1 and _is_header(fields):
                if int(fields[1]) != dim:
                    raise ValueError(
                        f"{path}:1: expected {dim} values per word, found {fields[1]} in the "
                        "word2vec header"
                    )
                continue
            if fields == [""]:
                continue  # a blank line
            if len(fields) - 1 != dim:
                raise ValueError(f"{path}:{lineno}: expected {dim} values, found {len(fields) - 1}")
            yield lineno, fields[0], fields[1:]


def _numbers(values: list[str], path: Path, lineno: int) -> list[float]:
    numbers = []
    for value in values:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ValueError(f"{path}:{lineno}: expected a finite number, found {value!r}")
        numbers.append(number)
    return numbers
