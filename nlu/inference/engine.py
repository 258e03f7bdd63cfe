"""What a Parser runs its model with: an engine turns words into tag scores and intent logits.

Two engines exist: `TorchEngine` (the model as trained, `nlu.inference.torch_engine`) and
`OnnxEngine` (the exported graph under onnxruntime, `nlu.inference.onnx_engine`). The Parser
does the rest, tokenizing, decoding and confidences, in NumPy, the same for both. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from nlu.decode.decoder import TagDecoder

BACKENDS = ("auto", "torch", "onnx")
Precision = Literal["float32", "int8", "bfloat16"]
PRECISIONS = ("float32", "int8", "bfloat16")


@dataclass(frozen=True)
class Scores:
    """What one forward pass gives a batch of sentences, as NumPy arrays."""

    tag_scores: np.ndarray  # (B, T, num_tags) float32
    intent_logits: np.ndarray  # (B, num_intents) float32
    mask: np.ndarray  # (B, T) bool, True on real tokens


class Engine(Protocol):
    """A model ready for inference, with its decoder and calibration."""

    backend: str  # "torch" or "onnx"
    precision: str  # "float32", "int8" or "bfloat16"
    precision_chosen_by: str  # "asked", or why it is the model's default
    decoder: TagDecoder

    def scores(self, sentences: Sequence[Sequence[str]]) -> Scores:
        """Scores of pre-tokenized, non-empty sentences (words as the tokenizer gave them)."""
        ...

    @property
    def temperature(self) -> float:
        """What the intent logits are divided by for confidences (`nlu.eval.calibration`)."""
        ...

    @property
    def quantized(self) -> bool:
        """Whether some layers hold int8 weights."""
        ...


def check_backend(backend: str) -> None:
    """Raise `ValueError` unless `backend` is one `Parser.load` knows."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {list(BACKENDS)}, found {backend!r}")


def check_precision(precision: str) -> None:
    """Raise `ValueError` unless `precision` is one `Parser.load` knows."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {list(PRECISIONS)}, found {precision!r}")


def limit_blas_threads(num_threads: int) -> None:
    """Run NumPy's BLAS (the CRF's forward-backward) on at most `num_threads` threads, for the
    whole process.

    Limiting the backend's threads alone is not enough: NumPy's OpenBLAS keeps a pool of its
    own, as large as the machine, and its threads spin while they wait. Beside a second server
    worker or a training job, a CRF forward-backward at batch 256 then took 2-5 x as long, and
    `parse_batch` ran at half speed (docs/benchmarks-history.md).
    """
    from threadpoolctl import threadpool_limits

    threadpool_limits(num_threads, user_api="blas")
