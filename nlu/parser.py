"""The public inference API: `Parser.load(model_dir).parse(text) -> Parse`.

Imports torch and the model, never Lightning or `datasets`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from nlu import archive
from nlu.config import ExperimentConfig
from nlu.features import collate, featurize
from nlu.model import JointModel, build_model
from nlu.schema import Entity, Parse, Token
from nlu.tags import spans
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs


@dataclass(frozen=True)
class Prediction:
    """Model output for one pre-tokenized sentence."""

    tags: list[str]
    tag_confidence: list[float]  # marginal probability of each predicted tag
    intent_probs: list[float]  # over vocabs.intents, in its order


def _spread(prediction: Prediction, kept: list[int], num_tokens: int) -> Prediction:
    """Put the tags of the kept tokens back at their places; skipped tokens get O."""
    if len(kept) == num_tokens:
        return prediction
    tags, confidence = ["O"] * num_tokens, [1.0] * num_tokens
    for j, i in enumerate(kept):
        tags[i], confidence[i] = prediction.tags[j], prediction.tag_confidence[j]
    return Prediction(tags, confidence, prediction.intent_probs)


class Parser:
    """Turns raw text into a `Parse` with a trained `JointModel`."""

    def __init__(
        self,
        model: JointModel,
        vocabs: Vocabs,
        config: ExperimentConfig,
        info: dict | None = None,
    ) -> None:
        self.model = model.eval()
        self.vocabs = vocabs
        self.config = config
        self.info = info or {}
        self.tokenizer = Tokenizer(lowercase=config.data.lowercase)

    @classmethod
    def load(cls, path: str | os.PathLike, num_threads: int | None = None) -> Parser:
        """Load a model directory written by `nlu train` (see `nlu.archive`)."""
        if num_threads:
            torch.set_num_threads(num_threads)
        loaded = archive.load(path)
        model = build_model(loaded.config.model, loaded.vocabs)
        try:
            model.load_state_dict(loaded.state_dict)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise ValueError(
                f"{archive.resolve_model_dir(path) / archive.WEIGHTS_FILE}: weights do not fit "
                f"config.yaml ({first})"
            ) from None
        return cls(model, loaded.vocabs, loaded.config, loaded.info)

    @torch.inference_mode()
    def predict(
        self, sentences: Sequence[Sequence[str]], batch_size: int = 256
    ) -> list[Prediction]:
        """Tags and intent probabilities of pre-tokenized sentences (words as written)."""
        results: list[Prediction] = []
        for lo in range(0, len(sentences), batch_size):
            chunk = sentences[lo : lo + batch_size]
            nonempty = [s for s in chunk if len(s) > 0]
            if nonempty:
                batch = collate([featurize(s, self.vocabs, self.tokenizer) for s in nonempty])
                output = self.model.forward_batch(batch)
                paths = self.model.decode(output)
                marginals = self.model.tag_head.marginals(output.tag_scores, batch.mask)
                intent_probs = output.intent_logits.softmax(dim=-1)
                done = iter(self._predictions(paths, marginals, intent_probs))
            for sentence in chunk:
                results.append(next(done) if len(sentence) > 0 else self._empty())
        return results

    def _predictions(
        self, paths: list[list[int]], marginals: Tensor, intent_probs: Tensor
    ) -> list[Prediction]:
        names = self.vocabs.tags.itos
        out = []
        for i, path in enumerate(paths):
            index = torch.tensor(path, dtype=torch.long)
            confidence = marginals[i, torch.arange(len(path)), index].tolist()
            out.append(Prediction([names[k] for k in path], confidence, intent_probs[i].tolist()))
        return out

    def _empty(self) -> Prediction:
        # No tokens: nothing to tag; the intent still comes from the model on an empty input.
        with torch.inference_mode():
            batch = collate([featurize([""], self.vocabs, self.tokenizer)])
            probs = self.model.forward_batch(batch).intent_logits.softmax(dim=-1)[0].tolist()
        return Prediction([], [], probs)

    def parse(self, text: str) -> Parse:
        """Intent and slots of one utterance as the user typed it."""
        return self.parse_batch([text])[0]

    def parse_batch(self, texts: Sequence[str], batch_size: int = 256) -> list[Parse]:
        """`parse` of several utterances, batched; results equal one-at-a-time parsing."""
        tokenized = [self.tokenizer.tokenize(text) for text in texts]
        kept = [
            [i for i, t in enumerate(tokens) if self._model_sees(t.text)] for tokens in tokenized
        ]
        words = [[tokens[i].text for i in keep] for tokens, keep in zip(tokenized, kept)]
        predictions = self.predict(words, batch_size)
        return [
            self._to_parse(text, tokens, _spread(prediction, keep, len(tokens)))
            for text, tokens, keep, prediction in zip(texts, tokenized, kept, predictions)
        ]

    def _model_sees(self, word: str) -> bool:
        # Punctuation the training data never had ("San Francisco?" against ATIS) would reach
        # the model as an unknown word and could be tagged as part of a slot; it is tagged O.
        return any(c.isalnum() for c in word) or self.tokenizer.normalize(word) in self.vocabs.words

    def _to_parse(
        self, text: str, tokens: list[Token], prediction: Prediction, top_k: int = 10
    ) -> Parse:
        intents = self.vocabs.intents.itos
        ranking = sorted(zip(intents, prediction.intent_probs), key=lambda p: -p[1])[:top_k]
        entities = []
        for span in spans(prediction.tags):
            start, end = tokens[span.start].start, tokens[span.end - 1].end
            confidence = 1.0
            for p in prediction.tag_confidence[span.start : span.end]:
                confidence *= p
            entities.append(
                Entity(span.label, text[start:end], start, end, confidence, span.start, span.end)
            )
        return Parse(
            text=text,
            intent=ranking[0][0],
            intent_confidence=ranking[0][1],
            intent_ranking=tuple(ranking),
            entities=tuple(entities),
            tokens=tuple(tokens),
            tags=tuple(prediction.tags),
        )
