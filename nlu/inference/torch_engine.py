"""The torch engine: the model as trained (or quantized), embedding through a word cache."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from nlu import archive
from nlu.decode.tables import as_array
from nlu.features import collate, featurize
from nlu.inference.engine import Precision, Scores, check_precision
from nlu.inference.precision import quantize_int8
from nlu.inference.wordcache import Embedder, WordCache
from nlu.model import JointModel, build_model
from nlu.modules.embedding import TokenEmbedding
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs


def load_model(path: str | os.PathLike) -> tuple[JointModel, archive.Archive]:
    """The model of a model directory with its weights, and what the directory holds."""
    loaded = archive.load(path)
    model = build_model(loaded.config.model, loaded.vocabs)
    state = dict(loaded.state_dict)
    # Format 1 archives predate the intent temperature: theirs is 1, uncalibrated.
    state.setdefault("intent_head.temperature", torch.ones(()))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise ValueError(
            f"{archive.resolve_model_dir(path) / archive.WEIGHTS_FILE}: weights do not fit "
            f"config.yaml ({first})"
        ) from None
    return model, loaded


def embedder(embedding: TokenEmbedding, vocabs: Vocabs, tokenizer: Tokenizer) -> Embedder:
    """What embeds words for a `WordCache`: the model's embedding module, on one padded row."""

    def compute(words: list[str]) -> np.ndarray:
        batch = collate([featurize(words, vocabs, tokenizer)])
        with torch.inference_mode():
            return embedding(batch.word_ids, batch.char_ids)[0].float().numpy()

    return compute


class TorchEngine:
    """A `JointModel` frozen for inference at a precision (see `Parser.load`)."""

    backend = "torch"

    def __init__(
        self,
        model: JointModel,
        vocabs: Vocabs,
        tokenizer: Tokenizer,
        precision: Precision = "float32",
    ) -> None:
        check_precision(precision)
        if precision == "int8":
            model = quantize_int8(model)
        batch_dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self.model = model.freeze(batch_dtype)
        self.precision = precision
        self.precision_chosen_by = "asked"  # or the default (`Parser.load`)
        embedding = self.model.embedding
        self.words = WordCache(
            embedder(embedding, vocabs, tokenizer), embedding.output_dim, tokenizer
        )
        self.decoder = self.model.tag_head.decoder()

    @torch.inference_mode()
    def scores(self, sentences: Sequence[Sequence[str]]) -> Scores:
        embedded, mask = self.words.embed(sentences)
        output = self.model.forward_embedded(torch.from_numpy(embedded), torch.from_numpy(mask))
        return Scores(as_array(output.tag_scores), as_array(output.intent_logits), mask)

    @property
    def temperature(self) -> float:
        # Read on every call: calibration sets it in the model after the engine is built.
        return float(self.model.intent_head.temperature)

    @property
    def quantized(self) -> bool:
        return any(".quantized." in type(m).__module__ for m in self.model.modules())
