"""Slot F1 (exact span match, as conlleval), intent accuracy and sentence accuracy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nlu.tags import spans

MULTI_INTENT_SEPARATOR = "#"


@dataclass(frozen=True)
class SlotScore:
    """Precision, recall and F1 (percent) of one slot type, or of all of them."""

    precision: float
    recall: float
    f1: float
    support: int  # gold spans
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
        }


def slot_score(correct: int, predicted: int, gold: int) -> SlotScore:
    """Precision, recall and F1 from span counts; 0 where undefined."""
    precision = 100.0 * correct / predicted if predicted else 0.0
    recall = 100.0 * correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return SlotScore(precision, recall, f1, gold, predicted, correct)


def intent_matches_any(gold: str, predicted: str) -> bool:
    """True when the prediction is the gold label or one of the intents of a multi-intent label."""
    return predicted == gold or predicted in gold.split(MULTI_INTENT_SEPARATOR)


def score(
    gold_tags: Sequence[Sequence[str]],
    gold_intents: Sequence[str],
    pred_tags: Sequence[Sequence[str]],
    pred_intents: Sequence[str],
) -> Report:
    """Score predicted tags and intents against gold ones, sentence by sentence.

    Labels never seen in training are just strings that never match: they count as errors.
    """
    if not (len(gold_tags) == len(gold_intents) == len(pred_tags) == len(pred_intents)):
        raise ValueError(
            f"expected as many predictions as gold sentences, got {len(pred_tags)} tag sequences "
            f"and {len(pred_intents)} intents for {len(gold_tags)} sentences"
        )
    gold_count: Counter[str] = Counter()
    pred_count: Counter[str] = Counter()
    correct_count: Counter[str] = Counter()
    intent_right = intent_any = sentence_right = 0
    for i, (gold, pred) in enumerate(zip(gold_tags, pred_tags)):
        if len(gold) != len(pred):
            raise ValueError(f"sentence {i}: {len(pred)} predicted tags for {len(gold)} gold tags")
        gold_spans, pred_spans = set(spans(gold)), set(spans(pred))
        gold_count.update(s.label for s in gold_spans)
        pred_count.update(s.label for s in pred_spans)
        correct_count.update(s.label for s in gold_spans & pred_spans)
        right = gold_intents[i] == pred_intents[i]
        intent_right += right
        intent_any += intent_matches_any(gold_intents[i], pred_intents[i])
        sentence_right += right and list(gold) == list(pred)
    n = len(gold_tags)
    per_slot = {
        label: slot_score(correct_count[label], pred_count[label], gold_count[label])
        for label in sorted(gold_count | pred_count)
    }
    total = slot_score(
        sum(correct_count.values()), sum(pred_count.values()), sum(gold_count.values())
    )
    rate = (lambda k: 100.0 * k / n) if n else (lambda k: 0.0)
    return Report(
        num_examples=n,
        slot=total,
        intent_accuracy=rate(intent_right),
        intent_accuracy_any=rate(intent_any),
        sentence_accuracy=rate(sentence_right),
        intent_correct=intent_right,
        sentence_correct=sentence_right,
        per_slot=per_slot,
    )
