"""An evaluation report you can look at: scores, tables, confusion matrix and every wrong utterance.

`build_report` turns gold examples and predictions into an `EvaluationReport` (pure Python);
this module also renders its Markdown parts, `nlu.eval.report_html` its page, and
`nlu.eval.report_dir.write_report` writes them all as a directory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlu.eval.metrics import Confusion, Report, SlotScore, intent_confusion, score
from nlu.schema import Example, Span
from nlu.tags import spans


@dataclass(frozen=True)
class ErrorCase:
    """An utterance whose intent or slot spans were predicted wrong; spans index its tokens."""

    index: int  # position among the evaluated examples
    source: str  # "file:line" it was read from ("" if unknown)
    tokens: tuple[str, ...]
    gold_intent: str
    pred_intent: str
    gold_spans: tuple[Span, ...]
    pred_spans: tuple[Span, ...]

    @property
    def intent_wrong(self) -> bool:
        return self.gold_intent != self.pred_intent

    @property
    def missed(self) -> tuple[Span, ...]:
        """Gold spans the prediction does not have (exact label and boundaries)."""
        return tuple(s for s in self.gold_spans if s not in self.pred_spans)

    @property
    def spurious(self) -> tuple[Span, ...]:
        """Predicted spans that are not gold."""
        return tuple(s for s in self.pred_spans if s not in self.gold_spans)


@dataclass(frozen=True)
class EvaluationReport:
    """Scores, intent confusion and errors of one model on one set of examples."""

    title: str
    report: Report
    confusion: Confusion
    errors: list[ErrorCase]
    meta: dict[str, Any] = field(default_factory=dict)  # model, data: shown in the header

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            **self.meta,
            **self.report.to_dict(),
            "num_errors": len(self.errors),
            "confusion": {"labels": self.confusion.labels, "counts": self.confusion.counts},
        }


def find_errors(
    examples: Sequence[Example], pred_tags: Sequence[Sequence[str]], pred_intents: Sequence[str]
) -> list[ErrorCase]:
    """Every example whose predicted intent or set of slot spans differs from the gold one."""
    errors = []
    for i, (example, tags, intent) in enumerate(zip(examples, pred_tags, pred_intents)):
        gold, predicted = spans(example.tags), spans(tags)
        if intent != example.intent or set(gold) != set(predicted):
            errors.append(
                ErrorCase(
                    i,
                    example.source,
                    example.tokens,
                    example.intent,
                    intent,
                    tuple(gold),
                    tuple(predicted),
                )
            )
    return errors


def build_report(
    examples: Sequence[Example],
    pred_tags: Sequence[Sequence[str]],
    pred_intents: Sequence[str],
    title: str = "evaluation",
    meta: dict[str, Any] | None = None,
    known: Set[str] | None = None,
) -> EvaluationReport:
    """Score predictions against `examples` and collect what is needed to look at the errors;
    `known`: the training words, for slot scores on unseen-word spans."""
    gold_intents = [e.intent for e in examples]
    tokens = [e.tokens for e in examples]
    report = score([e.tags for e in examples], gold_intents, pred_tags, pred_intents, tokens, known)
    return EvaluationReport(
        title,
        report,
        intent_confusion(gold_intents, pred_intents),
        find_errors(examples, pred_tags, pred_intents),
        dict(meta or {}),
    )


def short_source(source: str) -> str:
    """`.../atis/test/seq.in:12` as `test/seq.in:12`: enough to find the line, short to read."""
    path, sep, line = source.rpartition(":")
    if not sep or not line.isdigit():
        return source
    parts = Path(path).parts[-2:]
    return f"{'/'.join(parts)}:{line}"


def _md(text: str) -> str:
    """Text safe inside Markdown (and its tables)."""
    for char in "\\`*_[]<>|#":
        text = text.replace(char, "\\" + char)
    return text


def unseen_line(r: Report) -> str:
    """Slot F1 on spans holding a word unseen in training, and on the rest (one line)."""
    unseen, seen = r.slot_unseen, r.slot_seen
    assert unseen is not None and seen is not None
    return (
        f"slot F1 on spans with a word unseen in training {unseen.f1:.2f} "
        f"({unseen.support} gold spans), on the rest {seen.f1:.2f} ({seen.support})"
    )


def score_rows(scores: dict[str, SlotScore]) -> list[tuple[str, SlotScore]]:
    """Rows of a per-label table: most gold occurrences first, then by name."""
    return sorted(scores.items(), key=lambda kv: (-kv[1].support, kv[0]))


def worst_slots(scores: dict[str, SlotScore], limit: int = 10) -> list[tuple[str, SlotScore]]:
    """The labels with the most wrong spans (missed gold + spurious predicted), at most `limit`."""
    wrong = {label: s.support + s.predicted - 2 * s.correct for label, s in scores.items()}
    ranked = sorted((label for label in scores if wrong[label]), key=lambda k: (-wrong[k], k))
    return [(label, scores[label]) for label in ranked[:limit]]


def _score_table(scores: dict[str, SlotScore], first: str, total: SlotScore | None) -> list[str]:
    lines = [
        f"| {first} | precision | recall | F1 | support | predicted | correct |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [(f"`{label}`", s) for label, s in score_rows(scores)]
    if total is not None:
        rows.append(("**all**", total))
    for label, s in rows:
        lines.append(
            f"| {label} | {s.precision:.2f} | {s.recall:.2f} | {s.f1:.2f} | {s.support} | "
            f"{s.predicted} | {s.correct} |"
        )
    return lines


def slots_markdown(evaluation: EvaluationReport) -> str:
    """The per-slot table (exact span match, as conlleval)."""
    r = evaluation.report
    head = [
        f"# Slots: {_md(evaluation.title)}",
        "",
        f"{r.num_examples} utterances; slot P {r.slot.precision:.2f}, R {r.slot.recall:.2f}, "
        f"F1 {r.slot.f1:.2f} (exact span match). Support is the number of gold spans.",
        "",
        *([unseen_line(r), ""] if r.slot_unseen is not None else []),
    ]
    worst = [
        "",
        "## Most wrong spans",
        "",
        "| slot | missed | spurious | support |",
        "|---|---:|---:|---:|",
        *(
            f"| `{label}` | {s.support - s.correct} | {s.predicted - s.correct} | {s.support} |"
            for label, s in worst_slots(r.per_slot)
        ),
    ]
    return "\n".join(head + _score_table(r.per_slot, "slot", r.slot) + worst) + "\n"


def intents_markdown(evaluation: EvaluationReport) -> str:
    """The per-intent table and the intent confusions, most frequent first."""
    r = evaluation.report
    lines = [
        f"# Intents: {_md(evaluation.title)}",
        "",
        f"{r.num_examples} utterances; intent accuracy {r.intent_accuracy:.2f} "
        f"(any-of-gold rule {r.intent_accuracy_any:.2f}). Support is the number of gold "
        "utterances.",
        *(
            [
                "",
                f"Several intents a message: set accuracy {r.intent_set_accuracy:.2f} (any "
                f"order), F1 over the single intents {r.intent_f1.f1:.2f}, overall accuracy "
                f"{r.overall_accuracy:.2f} (the set and every tag).",
            ]
            if r.multi_intent and r.intent_f1 is not None
            else []
        ),
        "",
        *_score_table(r.per_intent, "intent", None),
        "",
        "## Confusions",
        "",
        "| gold | predicted | utterances |",
        "|---|---|---:|",
    ]
    lines += [f"| `{g}` | `{p}` | {n} |" for g, p, n in evaluation.confusion.errors()]
    return "\n".join(lines) + "\n"


def segments(
    tokens: Sequence[str], found: Sequence[Span]
) -> Iterator[tuple[Sequence[str], Span | None]]:
    """The sentence in order as pieces to mark: each span's tokens with the span, and each token
    outside a span alone (span None)."""
    starts = {s.start: s for s in found}
    i = 0
    while i < len(tokens):
        span = starts.get(i)
        if span is None:
            yield tokens[i : i + 1], None
            i += 1
        else:
            yield tokens[span.start : span.end], span
            i = span.end


def marked_markdown(tokens: Sequence[str], found: Sequence[Span], wrong: Sequence[Span]) -> str:
    """The sentence with each span as `[words `label`]`, the wrong ones in bold."""
    words = []
    for piece, span in segments(tokens, found):
        text = " ".join(_md(t) for t in piece)
        if span is not None:
            text = f"[{text} `{span.label}`]"
            text = f"**{text}**" if span in wrong else text
        words.append(text)
    return " ".join(words)


def errors_markdown(evaluation: EvaluationReport) -> str:
    """Every wrong utterance: its intent (gold → predicted) and its spans, wrong ones in bold."""
    r = evaluation.report
    lines = [
        f"# Errors: {_md(evaluation.title)}",
        "",
        f"{len(evaluation.errors)} of {r.num_examples} utterances have a wrong intent or a wrong "
        "slot span. Spans are `[words label]`; **bold** marks a gold span that was missed or a "
        "predicted span that is not gold.",
    ]
    for number, e in enumerate(evaluation.errors, start=1):
        intent = f"`{e.gold_intent}`" + (
            f" → **`{e.pred_intent}`** (wrong)" if e.intent_wrong else " (right)"
        )
        lines += [
            "",
            f"## {number}. {_md(short_source(e.source)) or f'utterance {e.index + 1}'}",
            "",
            f"- intent: {intent}",
            f"- gold: {marked_markdown(e.tokens, e.gold_spans, e.missed)}",
            f"- predicted: {marked_markdown(e.tokens, e.pred_spans, e.spurious)}",
        ]
    return "\n".join(lines) + "\n"
