"""Slot F1 (exact span match, as conlleval), intent accuracy and sentence accuracy, per-slot and
per-intent scores, and the intent confusion matrix.

Labels that join several intents ("a#b", see `nlu.schema.INTENT_SEPARATOR`) are also scored the
way the multi-intent literature (MixATIS, MixSNIPS) scores them: intent accuracy on the set of
intents in any order, intent F1 over the single intents, and overall accuracy (the set and every
tag right). ATIS keeps its exact-label rule as the headline, as its literature scores it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence, Set
from dataclasses import asdict, dataclass, field
from typing import Any

from nlu.schema import INTENT_SEPARATOR
from nlu.tags import spans


@dataclass(frozen=True)
class SlotScore:
    """Precision, recall and F1 (percent) of one slot type (or of all), or of one intent."""

    precision: float
    recall: float
    f1: float
    support: int  # gold spans (gold utterances of an intent)
    predicted: int
    correct: int


@dataclass(frozen=True)
class Report:
    """Scores of predictions against gold annotations; all rates are percentages."""

    num_examples: int
    slot: SlotScore
    intent_accuracy: float
    intent_accuracy_any: float  # a multi-intent gold label "a#b" accepts "a" or "b" or "a#b"
    sentence_accuracy: float
    intent_correct: int = 0
    sentence_correct: int = 0
    per_slot: dict[str, SlotScore] = field(default_factory=dict)
    per_intent: dict[str, SlotScore] = field(default_factory=dict)  # exact-label rule
    # Spans holding a word unseen in training, and the rest (see `known_words`); None when the
    # training words were not given.
    slot_unseen: SlotScore | None = None
    slot_seen: SlotScore | None = None
    # The multi-intent scores (equal to the above for single-intent labels, up to order).
    multi_intent: bool = False  # some gold label joins several intents
    intent_set_accuracy: float = 0.0  # the set of intents right, in any order
    intent_f1: SlotScore | None = None  # micro P/R/F1 over the single intents
    overall_accuracy: float = 0.0  # the set of intents and every tag right

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, float]:
        """The headline numbers, flat."""
        return {
            "slot_precision": self.slot.precision,
            "slot_recall": self.slot.recall,
            "slot_f1": self.slot.f1,
            "intent_accuracy": self.intent_accuracy,
            "intent_accuracy_any": self.intent_accuracy_any,
            "sentence_accuracy": self.sentence_accuracy,
            "intent_set_accuracy": self.intent_set_accuracy,
            "intent_f1": self.intent_f1.f1 if self.intent_f1 is not None else 0.0,
            "overall_accuracy": self.overall_accuracy,
            **(
                {"slot_f1_unseen": self.slot_unseen.f1, "slot_f1_seen": self.slot_seen.f1}
                if self.slot_unseen is not None and self.slot_seen is not None
                else {}
            ),
        }


def slot_score(correct: int, predicted: int, gold: int) -> SlotScore:
    """Precision, recall and F1 from span counts; 0 where undefined."""
    precision = 100.0 * correct / predicted if predicted else 0.0
    recall = 100.0 * correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SlotScore(precision, recall, f1, gold, predicted, correct)


def known_words(token_lists: Iterable[Sequence[str]]) -> frozenset[str]:
    """The lower-cased surface forms of the training tokens. A word outside them is unseen,
    whatever a model's own normalisation makes of it, so every model trained on one split is
    scored on the same unseen-word spans."""
    return frozenset(token.lower() for tokens in token_lists for token in tokens)


def intent_matches_any(gold: str, predicted: str) -> bool:
    """True when the prediction is the gold label or one of the intents of a multi-intent label."""
    return predicted == gold or predicted in gold.split(INTENT_SEPARATOR)


def score(
    gold_tags: Sequence[Sequence[str]],
    gold_intents: Sequence[str],
    pred_tags: Sequence[Sequence[str]],
    pred_intents: Sequence[str],
    tokens: Sequence[Sequence[str]] | None = None,
    known: Set[str] | None = None,
    separator: str = INTENT_SEPARATOR,
) -> Report:
    """Score predicted tags and intents against gold ones, sentence by sentence.

    Labels never seen in training are just strings that never match: they count as errors.
    Given each sentence's `tokens` and the training words (`known_words`), slot scores are also
    split between spans that hold a word unseen in training and the rest.
    """
    if not (len(gold_tags) == len(gold_intents) == len(pred_tags) == len(pred_intents)):
        raise ValueError(
            f"expected as many predictions as gold sentences, got {len(pred_tags)} tag sequences "
            f"and {len(pred_intents)} intents for {len(gold_tags)} sentences"
        )
    gold_count: Counter[str] = Counter()
    pred_count: Counter[str] = Counter()
    correct_count: Counter[str] = Counter()
    by_unseen: dict[str, Counter[bool]] = {"gold": Counter(), "pred": Counter(), "ok": Counter()}
    intent_right = intent_any = sentence_right = 0
    set_right = overall_right = 0
    single: Counter[str] = Counter()  # single intents: gold, predicted, right (micro F1)
    for i, (gold, pred) in enumerate(zip(gold_tags, pred_tags)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {i}: {len(pred)} predicted tags for {len(gold)} gold tags")
        gold_spans, pred_spans = set(spans(gold)), set(spans(pred))
        gold_count.update(s.label for s in gold_spans)
        pred_count.update(s.label for s in pred_spans)
        correct_count.update(s.label for s in gold_spans & pred_spans)
        if tokens is not None and known is not None:
            unseen = [t.lower() not in known for t in tokens[i]]
            for key, group in (("gold", gold_spans), ("pred", pred_spans),
                               ("ok", gold_spans & pred_spans)):  # fmt: skip
                by_unseen[key].update(any(unseen[s.start : s.end]) for s in group)
        right = gold_intents[i] == pred_intents[i]
        intent_right += right
        intent_any += intent_matches_any(gold_intents[i], pred_intents[i])
        tags_right = list(gold) == list(pred)
        sentence_right += right and tags_right
        gold_set = set(gold_intents[i].split(separator) if separator else [gold_intents[i]])
        pred_set = set(pred_intents[i].split(separator) if separator else [pred_intents[i]])
        set_right += gold_set == pred_set
        overall_right += gold_set == pred_set and tags_right
        single.update(gold=len(gold_set), pred=len(pred_set), ok=len(gold_set & pred_set))
    n = len(gold_tags)
    per_slot = {
        label: slot_score(correct_count[label], pred_count[label], gold_count[label])
        for label in sorted(gold_count | pred_count)
    }
    total = slot_score(
        sum(correct_count.values()), sum(pred_count.values()), sum(gold_count.values())
    )
    rate = (lambda k: 100.0 * k / n) if n else (lambda k: 0.0)
    gold_intents_count = Counter(gold_intents)
    pred_intents_count = Counter(pred_intents)
    right_intents_count = Counter(g for g, p in zip(gold_intents, pred_intents) if g == p)
    per_intent = {
        label: slot_score(
            right_intents_count[label], pred_intents_count[label], gold_intents_count[label]
        )
        for label in sorted(gold_intents_count | pred_intents_count)
    }
    return Report(
        num_examples=n,
        slot=total,
        intent_accuracy=rate(intent_right),
        intent_accuracy_any=rate(intent_any),
        sentence_accuracy=rate(sentence_right),
        intent_correct=intent_right,
        sentence_correct=sentence_right,
        per_slot=per_slot,
        per_intent=per_intent,
        multi_intent=bool(separator) and any(separator in label for label in gold_intents),
        intent_set_accuracy=rate(set_right),
        intent_f1=slot_score(single["ok"], single["pred"], single["gold"]),
        overall_accuracy=rate(overall_right),
        **(
            {
                f"slot_{name}": slot_score(*(by_unseen[k][flag] for k in ("ok", "pred", "gold")))
                for name, flag in (("unseen", True), ("seen", False))
            }
            if tokens is not None and known is not None
            else {}
        ),
    )


@dataclass(frozen=True)
class Confusion:
    """Intent confusion matrix: `counts[i][j]` utterances of gold `labels[i]` got `labels[j]`."""

    labels: list[str]  # gold labels, most frequent first, then labels only ever predicted
    counts: list[list[int]]

    def errors(self) -> list[tuple[str, str, int]]:
        """(gold, predicted, count) of every off-diagonal cell, most frequent first."""
        cells = [
            (gold, predicted, self.counts[i][j])
            for i, gold in enumerate(self.labels)
            for j, predicted in enumerate(self.labels)
            if i != j and self.counts[i][j]
        ]
        return sorted(cells, key=lambda cell: (-cell[2], cell[0], cell[1]))


def intent_confusion(gold_intents: Sequence[str], pred_intents: Sequence[str]) -> Confusion:
    """Count (gold, predicted) intent pairs into a square matrix over every label seen."""
    if len(gold_intents) != len(pred_intents):
        raise ValueError(
            f"expected as many predicted intents as gold ones, got {len(pred_intents)} "
            f"for {len(gold_intents)}"
        )
    gold_count = Counter(gold_intents)
    labels = sorted(gold_count, key=lambda label: (-gold_count[label], label))
    labels += sorted(set(pred_intents) - set(gold_count))
    index = {label: i for i, label in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for gold, predicted in zip(gold_intents, pred_intents):
        counts[index[gold]][index[predicted]] += 1
    return Confusion(labels, counts)
