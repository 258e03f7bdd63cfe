"""The ONNX engine: the graphs `nlu export` wrote, run by onnxruntime. Imports no torch.

As in the torch engine, words are embedded once per spelling (`nlu.inference.wordcache`): the
embedding graph runs on the words the cache has not seen, and the model graph on the embedded
batch. Words become ids as in training (`nlu.features.featurize`).
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu import archive
from nlu.decode.decoder import TagDecoder
from nlu.decode.tables import DecodeTables
from nlu.features import featurize
from nlu.inference.engine import Scores, limit_blas_threads
from nlu.inference.wordcache import Embedder, WordCache
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs

# The files `nlu.export` writes into a model directory.
EMBED_FILE = "embed.onnx"
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
RUNTIME_FILE = "runtime.json"
TABLES_FILE = "decode.safetensors"
# 1: one graph read word and character ids per position; 2: one graph read the batch's
# distinct words; 3: an embedding graph and a model graph
RUNTIME_VERSION = 3


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

    def session(name: str) -> Any:
        path = str(meta.model_dir / name)
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    tables = load_file(str(meta.model_dir / TABLES_FILE))
    decoder = TagDecoder(
        runtime["tag_head"],
        DecodeTables(tables["start"], tables["trans"], tables["end"]),
        runtime["constrained"],
    )
    tokenizer = Tokenizer(meta.config.data.lowercase, meta.config.data.normalize_digits)
    words = WordCache(
        embedder(session(runtime["embedding"]), meta.vocabs, tokenizer),
        runtime["embedding_dim"],
        tokenizer,
    )
    engine = OnnxEngine(
        session(graphs[precision]), words, decoder, runtime["temperature"], precision
    )
    engine.precision_chosen_by = chosen_by
    return engine, meta.config, meta.vocabs, meta.info


def embedder(session: Any, vocabs: Vocabs, tokenizer: Tokenizer) -> Embedder:
    """What embeds words for a `WordCache`: the exported embedding graph."""

    def compute(words: list[str]) -> np.ndarray:
        features = featurize(words, vocabs, tokenizer)
        width = max(1, max(len(c) for c in features.char_ids))
        chars = np.array([c + [0] * (width - len(c)) for c in features.char_ids], np.int64)
        feeds = {"word_ids": np.array(features.word_ids, np.int64), "char_ids": chars}
        return session.run(None, feeds)[0]

    return compute


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
    needed = ("graphs", "embedding", "embedding_dim", "tag_head", "constrained", "temperature")
    missing = [k for k in needed if k not in runtime]
    if missing:
        raise ValueError(f"{path}: missing {missing}")
    return runtime


class OnnxEngine:
    """An onnxruntime session of the exported model graph, with the word cache that feeds it
    and the decoder and temperature that were exported beside it."""

    backend = "onnx"

    def __init__(
        self,
        session: Any,
        words: WordCache,
        decoder: TagDecoder,
        temperature: float,
        precision: str = "float32",
    ) -> None:
        self.session = session
        self.words = words
        self.decoder = decoder
        self.temperature = float(temperature)
        self.precision = precision
        self.precision_chosen_by = "asked"  # or why the export chose it (`load`)
        self.quantized = precision == "int8"

    def scores(self, sentences: Sequence[Sequence[str]]) -> Scores:
        embedded, mask = self.words.embed(sentences)
        tag_scores, intent_logits = self.session.run(None, {"embedded": embedded, "mask": mask})
        return Scores(tag_scores, intent_logits, mask)
