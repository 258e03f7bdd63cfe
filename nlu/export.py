"""`nlu export`: the model as ONNX graphs, with what the torch-free runtime needs beside them.

Two graphs, as the torch backend runs the model (`nlu.inference.wordcache`):
- `embed.onnx` embeds words: `word_ids` (N,) and `char_ids` (N, L) (int64, characters
  right-padded with 0, as `nlu.features.featurize` gives them) -> `embedded` (N, E). The runtime
  runs it once per new spelling and caches the rows.
- `model.onnx` reads the embedded batch, `embedded` (B, T, E) float32 and `mask` (B, T) bool,
  and returns `tag_scores` (B, T, num_tags) and `intent_logits` (B, num_intents).
  `model.int8.onnx` is the same graph with int8 weights (`quantize_graph`).
Batch size, sentence length, word count and word length are free. Beside them go
`runtime.json` (the tag head's kind, the intent temperature, the graphs' inputs) and
`decode.safetensors` (the decode tables: start, transition and end scores with the BIO
constraints in them). JSON and safetensors only, no pickle. Each file is written under a
temporary name and renamed into place.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nlu import archive
from nlu.features import MAX_WORD_CHARS
from nlu.files import write_bytes_atomic, write_text_atomic
from nlu.inference.onnx_engine import (
    EMBED_FILE,
    INT8_FILE,
    ONNX_FILE,
    RUNTIME_FILE,
    RUNTIME_VERSION,
    TABLES_FILE,
)
from nlu.inference.precision import MIN_QUANTIZED_WEIGHTS
from nlu.inference.torch_engine import load_model
from nlu.model import JointModel
from nlu.schema import Example

OPSET = 17
# int8 becomes a model's default precision when none of its dev scores (slot F1, intent and
# sentence accuracy, in points) is more than this below float32's.
PRECISION_TOLERANCE = 0.1
EMBED_INPUTS = ("word_ids", "char_ids")
INPUTS = ("embedded", "mask")
OUTPUTS = ("tag_scores", "intent_logits")


class _Embed(nn.Module):
    """Words to their embeddings, each word alone: what the runtime's word cache computes."""

    def __init__(self, model: JointModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, word_ids: Tensor, char_ids: Tensor) -> Tensor:
        return self.model.embedding(word_ids.unsqueeze(0), char_ids.unsqueeze(0))[0]  # (N, E)


class _Encode(nn.Module):
    """The embedded batch to tag scores and intent logits."""

    def __init__(self, model: JointModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, embedded: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        output = self.model.forward_embedded(embedded, mask)
        return output.tag_scores, output.intent_logits


def _examples(model: JointModel) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Inputs to trace each graph with. Words: an unknown word (id 1) of unknown characters
    (id 1) and one with no characters. Sentences of different lengths: the parts that skip the
    padding work when there is none (`RNNEncoder`, max pooling) take their general path, which
    the graph then keeps for every input."""
    words = (torch.tensor([1, 1]), torch.tensor([[0, 0, 0], [1, 1, 0]]))
    mask = torch.arange(4)[None, :] < torch.tensor([4, 2])[:, None]  # (2, 4)
    embedded = torch.randn(2, 4, model.embedding.output_dim) * mask[:, :, None]
    return words, (embedded, mask)


def _export(module: nn.Module, example: tuple, inputs: Sequence[str], outputs: Sequence[str],
            dims: dict[str, list[str]]) -> bytes:  # fmt: skip
    """`module` traced into an ONNX graph, checked with `onnx.checker`."""
    import onnx

    graph = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # The tracer's notes on Python branches: `_examples` decides them on purpose.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            graph,
            dynamo=False,
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes={k: dict(enumerate(v)) for k, v in dims.items()},
            opset_version=OPSET,
        )
    onnx.checker.check_model(onnx.load_from_string(graph.getvalue()), full_check=True)
    return graph.getvalue()


def export_onnx(model_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the graph of the model in `model_dir` and the runtime's files into `out` (default:
    the model directory); return the graph's path."""
    model_dir = archive.resolve_model_dir(model_dir)
    model, _ = load_model(model_dir)
    return write_onnx(model, Path(out) if out is not None else model_dir)


def write_onnx(model: JointModel, out: Path, dev: Sequence[Example] | None = None) -> Path:
    """Write `model`'s graph and the runtime's files into `out` and return the graph's path.
    The graph is checked with `onnx.checker` before any file is written, and written last, so
    a directory with a graph has its runtime files. With `dev` (and `out` a model directory),
    `choose_precision` then picks the default precision on it. `model` itself is left as it
    was."""
    import onnx
    from safetensors.numpy import save

    model = copy.deepcopy(model).cpu().eval()
    decoder = model.tag_head.decoder()
    words, sentences = _examples(model)
    embed = _export(_Embed(model), words, EMBED_INPUTS, ["embedded"],
                    {"word_ids": ["words"], "char_ids": ["words", "chars"],
                     "embedded": ["words"]})  # fmt: skip
    graph = _export(_Encode(model), sentences, INPUTS, OUTPUTS,
                    {"embedded": ["batch", "length"], "mask": ["batch", "length"],
                     "tag_scores": ["batch", "length"], "intent_logits": ["batch"]})  # fmt: skip
    tables = {"start": decoder.tables.start, "trans": decoder.tables.trans,
              "end": decoder.tables.end}  # fmt: skip
    int8 = quantize_graph(graph)
    runtime = {
        "runtime_version": RUNTIME_VERSION,
        "embedding": EMBED_FILE,
        "embedding_dim": model.embedding.output_dim,
        "graphs": {"float32": ONNX_FILE, "int8": INT8_FILE},
        "tag_head": decoder.kind,
        "constrained": decoder.constrained,
        "temperature": float(model.intent_head.temperature),
        "max_word_chars": MAX_WORD_CHARS,
        "embedding_inputs": list(EMBED_INPUTS),
        "inputs": list(INPUTS),
        "outputs": list(OUTPUTS),
        "opset": OPSET,
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
    }
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / TABLES_FILE, save(tables))
    write_bytes_atomic(out / EMBED_FILE, embed)
    write_bytes_atomic(out / INT8_FILE, int8)
    write_text_atomic(out / RUNTIME_FILE, json.dumps(runtime, indent=2) + "\n")
    written = write_bytes_atomic(out / ONNX_FILE, graph)
    if dev is not None:
        choose_precision(out, dev)
    return written


def quantize_graph(graph: bytes) -> bytes:
    """The graph with int8 weights in its LSTM nodes and its larger matrix products
    (onnxruntime's dynamic quantization: activations are quantized per batch), as the torch
    backend's int8 (`quantize_int8`): embeddings, convolutions, GRU and RNN nodes stay float,
    and so do products with fewer weights than `MIN_QUANTIZED_WEIGHTS`, which int8 would make
    slower."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_from_string(graph)
    weights = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    small = [
        node.name
        for node in model.graph.node
        if node.op_type == "MatMul"
        and max(weights.get(name, 0) for name in node.input) < MIN_QUANTIZED_WEIGHTS
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / INT8_FILE
        advice = logging.Filter("no root messages")  # its advice to pre-process the graph
        logging.getLogger().addFilter(advice)
        try:
            quantize_dynamic(model, out, op_types_to_quantize=["LSTM", "MatMul"],
                             nodes_to_exclude=small, weight_type=QuantType.QInt8)  # fmt: skip
        finally:
            logging.getLogger().removeFilter(advice)
        return out.read_bytes()


def choose_precision(model_dir: Path, examples: Sequence[Example]) -> dict[str, Any]:
    """Score the exported float32 and int8 graphs of `model_dir` on `examples` (its dev split)
    and make int8 the model's default precision (`runtime.json`) if none of its scores is more
    than `PRECISION_TOLERANCE` below float32's, else float32. Returns what runtime.json now
    says of it."""
    from nlu.eval.evaluate import evaluate
    from nlu.parser import Parser

    scores = {}
    for precision in ("float32", "int8"):
        report = evaluate(Parser.load(model_dir, backend="onnx", precision=precision), examples)
        scores[precision] = {"slot_f1": round(report.slot.f1, 2),
                             "intent_accuracy": round(report.intent_accuracy, 2),
                             "sentence_accuracy": round(report.sentence_accuracy, 2)}  # fmt: skip
    close = all(scores["int8"][k] >= v - PRECISION_TOLERANCE for k, v in scores["float32"].items())
    verdict = "no int8 score is" if close else "an int8 score is"
    chosen = {
        "default_precision": "int8" if close else "float32",
        "precision_chosen_by": f"dev scores of {len(examples)} utterances: {verdict} more "
        f"than {PRECISION_TOLERANCE} below float32's",
        "precision_check": scores,
    }
    path = model_dir / RUNTIME_FILE
    runtime = {**json.loads(path.read_text(encoding="utf-8")), **chosen}
    write_text_atomic(path, json.dumps(runtime, indent=2) + "\n")
    return chosen
