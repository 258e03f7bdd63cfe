"""The ONNX engine: the graph `nlu export` wrote, run by onnxruntime. Imports no torch.

Words become ids as in training (`nlu.features.featurize`), cached by spelling: a chatbot sees
the same few thousand words again and again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu import archive
from nlu.decode.decoder import TagDecoder
from nlu.decode.tables import DecodeTables
from nlu.features import featurize
from nlu.inference.engine import Scores, limit_blas_threads
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs

# The files `nlu.export` writes into a model directory.
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
RUNTIME_FILE = "runtime.json"
TABLES_FILE = "decode.safetensors"
RUNTIME_VERSION = 2  # 1: the graph read word and character ids per position
MAX_CACHED_WORDS = 200_000


def available(path: str | os.PathLike, precision: str | None) -> bool:
    """Whether `path` holds a graph for `precision` (None: its default) and onnxruntime is
    installed."""
    try:
        runtime = _read_runtime(archive.resolve_model_dir(path))
    except (FileNotFoundError, ValueError):
        return False
    precision = precision or runtime.get("default_precision", "float32")
    return precision in runtime["graphs"] and importlib.util.find_spec("onnxruntime") is not None


def load(
    path: str | os.PathLike, precision: str | None = None, num_threads: int | None = None
) -> tuple[OnnxEngine, Any, Vocabs, dict]:
    """The engine of a model directory's exported graph at `precision` (None: the one its
    export chose), with its config, vocabularies and info."""
    meta = archive.load_meta(path)
    runtime = _read_runtime(meta.model_dir)
    chosen_by = "asked"
    if precision is None:
        precision = runtime.get("default_precision", "float32")
        chosen_by = runtime.get("precision_chosen_by", "the default")
    graphs = runtime["graphs"]
    if precision not in graphs:
        raise ValueError(
            f"{meta.model_dir / RUNTIME_FILE}: no {precision} graph (found {sorted(graphs)}); "
            "the onnx backend runs float32 and int8 (`nlu export` writes both), the torch "
            "backend bfloat16 too"
        )
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            "the onnx backend needs onnxruntime: pip install onnxruntime (or nlu[all])"
        ) from None
    from safetensors.numpy import load_file

    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        limit_blas_threads(num_threads)
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(meta.model_dir / graphs[precision]), options, providers=["CPUExecutionProvider"]
    )
    tables = load_file(str(meta.model_dir / TABLES_FILE))
    decoder = TagDecoder(
        runtime["tag_head"],
        DecodeTables(tables["start"], tables["trans"], tables["end"]),
        runtime["constrained"],
    )
    tokenizer = Tokenizer(meta.config.data.lowercase, meta.config.data.normalize_digits)
    engine = OnnxEngine(session, meta.vocabs, tokenizer, decoder, runtime["temperature"], precision)
    engine.precision_chosen_by = chosen_by
    return engine, meta.config, meta.vocabs, meta.info


def _read_runtime(model_dir: Path) -> dict[str, Any]:
    path = model_dir / RUNTIME_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; export the model with `nlu export {model_dir}`"
        )
    try:
        runtime = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupt ({e})") from None
    if runtime.get("runtime_version") != RUNTIME_VERSION:
        raise ValueError(
            f"{path}: runtime version {runtime.get('runtime_version')}, this nlu reads "
            f"{RUNTIME_VERSION}; export the model again with `nlu export {model_dir}`"
        )
    missing = [k for k in ("graphs", "tag_head", "constrained", "temperature") if k not in runtime]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    return runtime


class OnnxEngine:
    """An onnxruntime session of the exported graph, with the decoder and temperature that
    were exported beside it."""

    backend = "onnx"

    def __init__(
        self,
        session: Any,
        vocabs: Vocabs,
        tokenizer: Tokenizer,
        decoder: TagDecoder,
        temperature: float,
        precision: str = "float32",
    ) -> None:
        self.session = session
        self.vocabs = vocabs
        self.tokenizer = tokenizer
        self.decoder = decoder
        self.temperature = float(temperature)
        self.precision = precision
        self.precision_chosen_by = "asked"  # or why the export chose it (`load`)
        self.quantized = precision == "int8"
        self._ids: dict[str, tuple[int, list[int]]] = {}  # spelling -> word id, char ids
        self._lock = threading.Lock()

    def scores(self, sentences: Sequence[Sequence[str]]) -> Scores:
        # The batch's distinct words once each (see `nlu.export`); index 0 is padding (an
        # empty word is not: it reads as an unknown word, as in the torch backend).
        index: dict[str, int] = {}
        features: list[tuple[int, list[int]]] = [(0, [])]
        rows = []
        for words in sentences:
            row = []
            for word in words:
                at = index.get(word)
                if at is None:
                    at = index[word] = len(features)
                    features.append(self._word(word))
                row.append(at)
            rows.append(row)
        lengths = [len(row) for row in rows]
        width = max(1, max(lengths))
        tokens = np.array([row + [0] * (width - len(row)) for row in rows], np.int64)
        chars = max(1, max(len(c) for _, c in features))
        char_ids = np.array([c + [0] * (chars - len(c)) for _, c in features], np.int64)
        word_ids = np.array([w for w, _ in features], np.int64)
        mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
        feeds = {"word_ids": word_ids, "char_ids": char_ids, "tokens": tokens, "mask": mask}
        tag_scores, intent_logits = self.session.run(None, feeds)
        return Scores(tag_scores, intent_logits, mask)

    def _word(self, word: str) -> tuple[int, list[int]]:
        """The word id and character ids of a word as the tokenizer gave it."""
        found = self._ids.get(word)
        if found is None:
            features = featurize([word], self.vocabs, self.tokenizer)
            found = (features.word_ids[0], features.char_ids[0])
            if len(self._ids) < MAX_CACHED_WORDS:
                with self._lock:
                    self._ids[word] = found
        return found
