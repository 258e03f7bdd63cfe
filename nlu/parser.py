"""The public inference API: `Parser.load(model_dir).parse(text) -> Parse`.

Imports neither torch nor onnxruntime itself: the engine that computes the scores does
(`nlu.inference.engine`), and everything after the scores (decoding, spans, confidences, the
`Parse`) runs here in NumPy, the same for every backend. A Parser holds no state that a call
changes, so one instance can serve several threads at once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlu.config import ExperimentConfig
from nlu.inference.batches import BatchRunner
from nlu.inference.engine import Engine, Scores, check_backend, check_precision
from nlu.inference.spans import SpanScorer
from nlu.schema import Entity, Hypothesis, Parse, Span, Token
from nlu.tokenizer import Tokenizer
from nlu.vocab import Vocabs

_ALNUM = re.compile(r"[^\W_]")  # one character that str.isalnum() accepts
# Past a few batch threads, the Python parts of parsing (holding the GIL) are what waits.
MAX_BATCH_WORKERS = 4
# Utterances per batch (sorted by length first). Against 256, batches of 64 pad less and
# spread better over the batch workers: ATIS test with the ONNX int8 graph and two workers
# parsed at 12,600 utterances/s against 9,300 (torch float32 alike at 7,200), 32 gave 12,000.
BATCH_SIZE = 64


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Prediction:
    """Model output for one pre-tokenized sentence; spans index its tokens."""

    tags: list[str]
    spans: list[tuple[Span, float]]  # each slot span with its confidence
    intent_probs: list[float]  # over vocabs.intents, in its order
    n_best: list[tuple[list[str], float, list[tuple[Span, float]]]] = field(default_factory=list)
    ranking: list[int] = field(default_factory=list)  # intent ids, most probable first


class Parser:
    """Turns raw text into a `Parse` with a trained model, run by an `Engine`."""

    def __init__(
        self,
        model: Any,
        vocabs: Vocabs,
        config: ExperimentConfig,
        info: dict | None = None,
        ranking_size: int = 10,
        batch_workers: int = 1,
        precision: str = "float32",
    ) -> None:
        """`model` is an `Engine`, or a torch `JointModel`, which runs in a `TorchEngine` at
        `precision`."""
        self.batches = BatchRunner(batch_workers)  # checks the count before any work
        self.tokenizer = Tokenizer(config.data.lowercase, config.data.normalize_digits)
        if not hasattr(model, "scores"):  # a JointModel
            from nlu.inference.torch_engine import TorchEngine

            model = TorchEngine(model, vocabs, self.tokenizer, precision)
        self.engine: Engine = model
        self.vocabs = vocabs
        self.config = config
        self.info = info or {}
        self.ranking_size = ranking_size
        self.span_scorer = SpanScorer(vocabs.tags.itos)
        self.num_threads: int | None = None  # as `load` set them; None: the backend's default

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        num_threads: int | None = None,
        precision: str | None = None,
        batch_workers: int | None = None,
        backend: str = "auto",
    ) -> Parser:
        """Load a model directory written by `nlu train` (see `nlu.archive`).

        With no options it is the fast configuration (`describe()` says what was chosen):
        - `backend` says what runs the model: "torch" (the weights as trained), "onnx" (the
          graph `nlu train` or `nlu export` wrote, under onnxruntime, with no torch imported),
          or "auto": ONNX when the directory holds a graph for the precision and onnxruntime
          is installed, else torch.
        - `precision` trades exactness for speed on a CPU; None takes the model's default:
          the precision its export chose (int8 when int8's dev scores were within 0.1 of
          float32's, see `nlu.export.choose_precision`), else float32.
          - "float32": the model as trained;
          - "int8": the recurrent and larger linear layers with int8 weights; the tags can
            differ from float32's on a few sentences;
          - "bfloat16" (torch only): batches of more than one sentence run the recurrent
            layers in bfloat16 (see `RNNEncoder.freeze`), a single sentence in float32. Fast
            where the CPU has bfloat16 instructions (AVX512-BF16 or AMX), else slower.
        - `num_threads` sets the backend's intra-op threads and NumPy's BLAS threads (the
          latter, and torch's, for the whole process: see `set_threads`). None: one for ONNX
          (the fastest for one utterance, and batches spread over the workers instead);
          torch's own default for torch.
        - `batch_workers` lets `predict` and `parse_batch` run that many batches at once,
          each in its own thread. None: one per core, at most `MAX_BATCH_WORKERS`.
        BENCHMARKS.md (inference, the ONNX runtime) gives the speed and scores of each.
        """
        if precision is not None:
            check_precision(precision)  # before the weights are read
        check_backend(backend)
        from nlu.inference import onnx_engine

        if batch_workers is None:
            batch_workers = min(cores(), MAX_BATCH_WORKERS)
        asked = backend
        if backend == "auto":
            usable = onnx_engine.available(path, precision)
            backend = "onnx" if usable else "torch"
        if backend == "onnx":
            num_threads = num_threads or 1
            engine, config, vocabs, info = onnx_engine.load(path, precision, num_threads)
            parser = cls(engine, vocabs, config, info, batch_workers=batch_workers)
            parser.num_threads = num_threads
            return parser
        try:
            from nlu.inference.precision import set_threads
            from nlu.inference.torch_engine import load_model
        except ModuleNotFoundError as e:
            if e.name not in ("torch", "torchcrf"):
                raise
            hint = "" if asked == "torch" else f", or export the model (nlu export {path})"
            raise ModuleNotFoundError(
                f"the torch backend needs torch: pip install 'nlu[torch]'{hint}", name=e.name
            ) from None
        if num_threads:
            set_threads(num_threads)
        model, loaded = load_model(path)
        parser = cls(
            model,
            loaded.vocabs,
            loaded.config,
            loaded.info,
            batch_workers=batch_workers,
            precision=precision or "float32",
        )
        parser.num_threads = num_threads
        if precision is None:
            parser.engine.precision_chosen_by = "the torch backend's default"
        return parser

    def describe(self) -> dict[str, Any]:
        """How this Parser runs: backend, precision (and why), threads and batch workers."""
        return {
            "backend": self.backend,
            "precision": self.precision,
            "precision_chosen_by": self.engine.precision_chosen_by,
            "num_threads": self.num_threads,
            "batch_workers": self.batches.workers,
        }

    @property
    def backend(self) -> str:
        """What runs the model: "torch" or "onnx"."""
        return self.engine.backend

    @property
    def precision(self) -> str:
        return self.engine.precision

    @property
    def model(self) -> Any:
        """The torch `JointModel` (the torch backend only)."""
        model = getattr(self.engine, "model", None)
        if model is None:
            raise AttributeError(f"the {self.backend} backend has no torch model")
        return model

    @property
    def quantized(self) -> bool:
        """Whether some layers hold int8 weights (see `quantize_int8`)."""
        return self.engine.quantized

    def predict(
        self, sentences: Sequence[Sequence[str]], batch_size: int = BATCH_SIZE, n_best: int = 0
    ) -> list[Prediction]:
        """Tags, slot spans and intent probabilities of pre-tokenized sentences.

        With `batch_workers` > 1, batches run in that many threads at once (see `BatchRunner`).
        """
        return self.batches.run(sentences, batch_size, lambda c: self._predict_batch(c, n_best))

    def intent_logits(
        self, sentences: Sequence[Sequence[str]], batch_size: int = BATCH_SIZE
    ) -> np.ndarray:
        """Raw intent logits (N, num_intents) of pre-tokenized sentences, in input order (what
        `nlu.eval.calibration` fits the temperature on)."""
        rows = [
            self._scores(sentences[lo : lo + batch_size]).intent_logits
            for lo in range(0, len(sentences), batch_size)
        ]
        if not rows:
            return np.zeros((0, len(self.vocabs.intents)), np.float32)
        return np.concatenate(rows)

    def _scores(self, chunk: Sequence[Sequence[str]]) -> Scores:
        """The engine's scores of a batch of pre-tokenized sentences."""
        # An empty sentence still gets an intent: the model reads one unknown word.
        return self.engine.scores([s or [""] for s in chunk])

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated intent probabilities (B, num_intents), in NumPy: on one sentence's 20-odd
        intents that is a few microseconds, against two torch calls at ~5 us each."""
        scaled = logits / self.engine.temperature
        scaled = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        return scaled / np.add.reduce(scaled, axis=-1, keepdims=True)

    def _predict_batch(self, chunk: Sequence[Sequence[str]], n_best: int) -> list[Prediction]:
        scores = self._scores(chunk)
        decoder = self.engine.decoder
        paths, confidence = decoder.decode_with_confidence(scores.tag_scores, scores.mask)
        probs = self._probabilities(scores.intent_logits)
        intent_probs = probs.tolist()
        # Ties keep the vocabulary's order, whatever the batch.
        rankings = np.argsort(-probs, axis=1, kind="stable")[:, : self.ranking_size].tolist()
        # Every candidate tag sequence of the batch: (sentence, path, score or None).
        candidates: list[tuple[int, list[int], float | None]] = []
        for i, (sentence, path) in enumerate(zip(chunk, paths)):
            if not sentence:
                continue
            candidates.append((i, path, None))
            if n_best > 0:
                best = decoder.kbest(scores.tag_scores[i, : len(sentence)], n_best)
                candidates.extend((i, alt, score) for alt, score in best)
        tagged, scored = self.span_scorer(
            [path for _, path, _ in candidates], [i for i, _, _ in candidates], confidence
        )
        predictions = [
            Prediction([], [], probs, ranking=ranking)
            for probs, ranking in zip(intent_probs, rankings)
        ]
        for (i, _, score), tags, spans in zip(candidates, tagged, scored):
            if score is None:
                predictions[i] = Prediction(tags, spans, intent_probs[i], ranking=rankings[i])
            else:
                predictions[i].n_best.append((tags, score, spans))
        return predictions

    def parse(self, text: str, n_best: int = 0) -> Parse:
        """Intent and slots of one utterance as the user typed it.

        With `n_best=k`, `Parse.n_best` also holds the k best tag sequences with their scores.
        """
        return self.parse_batch([text], n_best=n_best)[0]

    def parse_batch(
        self, texts: Sequence[str], batch_size: int = BATCH_SIZE, n_best: int = 0
    ) -> list[Parse]:
        """`parse` of several utterances, batched. Results equal one-at-a-time parsing up to
        float rounding in the confidences (matrix products of other sizes round differently).
        An int8 Parser rounds its activations per batch, and a bfloat16 one runs batches in
        bfloat16 but a single sentence in float32: for both, the tags can differ on a few
        sentences."""
        # Whole parses run in the batches, tokenizing included: with batch_workers > 1 no part
        # of the work waits for the others. Character length stands in for the token count.
        return self.batches.run(texts, batch_size, lambda chunk: self._parse_chunk(chunk, n_best))

    def _parse_chunk(self, texts: list[str], n_best: int) -> list[Parse]:
        tokenized = [self.tokenizer.tokenize(text) for text in texts]
        kept, words = [], []
        for tokens in tokenized:
            spelled = [t.text for t in tokens]
            if all(map(str.isalnum, spelled)):  # the usual case: the model sees every token
                keep = list(range(len(spelled)))
            else:
                keep = [i for i, w in enumerate(spelled) if self._model_sees(w)]
                spelled = [spelled[i] for i in keep]
            kept.append(keep)
            words.append(spelled)
        predictions = self._predict_batch(words, n_best)
        return [
            self._to_parse(text, tokens, keep, prediction)
            for text, tokens, keep, prediction in zip(texts, tokenized, kept, predictions)
        ]

    def _model_sees(self, word: str) -> bool:
        # Punctuation the training data never had ("San Francisco?" against ATIS) would reach
        # the model as an unknown word and could be tagged as part of a slot; it is tagged O.
        return bool(_ALNUM.search(word)) or self.tokenizer.normalize(word) in self.vocabs.words

    def _to_parse(
        self, text: str, tokens: list[Token], kept: list[int], prediction: Prediction
    ) -> Parse:
        names, probs = self.vocabs.intents.itos, prediction.intent_probs
        ranking = [(names[i], probs[i]) for i in prediction.ranking]
        n_best = ()
        if prediction.n_best:
            n_best = tuple(
                Hypothesis(
                    _spread(tags, kept, len(tokens)), score, _entities(text, tokens, kept, found)
                )
                for tags, score, found in prediction.n_best
            )
        return Parse(
            text=text,
            intent=ranking[0][0],
            intent_confidence=ranking[0][1],
            intent_ranking=tuple(ranking),
            entities=_entities(text, tokens, kept, prediction.spans),
            tokens=tuple(tokens),
            tags=_spread(prediction.tags, kept, len(tokens)),
            n_best=n_best,
        )


def _spread(tags: list[str], kept: list[int], num_tokens: int) -> tuple[str, ...]:
    """Tags of the kept tokens put back at their places; skipped tokens get O."""
    if len(kept) == num_tokens:  # every token kept (the usual case)
        return tuple(tags)
    out = ["O"] * num_tokens
    for tag, i in zip(tags, kept):
        out[i] = tag
    return tuple(out)


def _entities(
    text: str, tokens: list[Token], kept: list[int], found: list[tuple[Span, float]]
) -> tuple[Entity, ...]:
    entities = []
    for span, confidence in found:
        first, last = kept[span.start], kept[span.end - 1]
        start, end = tokens[first].start, tokens[last].end
        entities.append(
            Entity(span.label, text[start:end], start, end, confidence, first, last + 1)
        )
    return tuple(entities)
