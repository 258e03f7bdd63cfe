"""`report.html`: one self-contained page (inline CSS, images as data URIs, no script, no server).

Every piece of user text (tokens, labels, paths) goes through `html.escape`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape

from nlu.eval.metrics import SlotScore
from nlu.eval.report import (
    ErrorCase,
    EvaluationReport,
    score_rows,
    segments,
    short_source,
    worst_slots,
)
from nlu.schema import Span

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1150px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f5f5f5; position: sticky; top: 0; }
td:first-child, th:first-child, table.labels td:nth-child(2), table.labels th:nth-child(2) {
  text-align: left; }
code { font-size: 0.92em; } .meta { color: #666; } nav a { margin-right: 1em; }
.scroll { max-height: 34em; overflow-y: auto; display: inline-block; border: 1px solid #eee; }
.headline td { font-size: 1.1em; }
.error { border-top: 1px solid #eee; padding: 0.5em 0; }
.error .where { color: #888; font-size: 0.85em; }
.line { margin: 0.15em 0; } .line b { display: inline-block; width: 6em; color: #666;
       font-weight: normal; }
.span { border-radius: 3px; padding: 0 3px; background: #e3eefc; border: 1px solid #b6cff5; }
.span.bad { background: #fde2e1; border-color: #e8837c; }
.span sub { color: #555; font-size: 0.72em; margin-left: 2px; }
.intent-bad { color: #b3261e; font-weight: 600; }
img { max-width: 100%; }
"""


def _f1_cell(value: float) -> str:
    # Red for poor scores, fading to white at 100: failing labels stand out in a long table.
    redness = min(1.0, max(0.0, (100.0 - value) / 50.0))
    green_blue = round(255 - 120 * redness)
    return f'<td style="background: rgb(255,{green_blue},{green_blue})">{value:.2f}</td>'


def _score_table(scores: Mapping[str, SlotScore], first: str, total: SlotScore | None) -> str:
    head = (
        f"<tr><th>{first}</th><th>precision</th><th>recall</th><th>F1</th>"
        "<th>support</th><th>predicted</th><th>correct</th></tr>"
    )
    rows = [(f"<code>{escape(label)}</code>", s) for label, s in score_rows(dict(scores))]
    if total is not None:
        rows.append(("<b>all</b>", total))
    body = "".join(
        f"<tr><td>{label}</td><td>{s.precision:.2f}</td><td>{s.recall:.2f}</td>"
        f"{_f1_cell(s.f1)}<td>{s.support}</td><td>{s.predicted}</td><td>{s.correct}</td></tr>"
        for label, s in rows
    )
    return f'<div class="scroll"><table>{head}{body}</table></div>'


def _image(name: str, png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{name}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def marked_html(tokens: Sequence[str], found: Sequence[Span], wrong: Sequence[Span]) -> str:
    """The sentence with each span boxed and labelled; wrong spans in red."""
    parts = []
    for piece, span in segments(tokens, found):
        words = escape(" ".join(piece))
        if span is not None:
            kind = "span bad" if span in wrong else "span"
            words = f'<span class="{kind}">{words}<sub>{escape(span.label)}</sub></span>'
        parts.append(words)
    return " ".join(parts)


def _error_html(number: int, e: ErrorCase) -> str:
    where = escape(short_source(e.source) or f"utterance {e.index + 1}")
    intent = f"<code>{escape(e.gold_intent)}</code>"
    if e.intent_wrong:
        intent += f' → <code class="intent-bad">{escape(e.pred_intent)}</code>'
    else:
        intent += ' <span class="meta">(right)</span>'
    return (
        f'<div class="error"><span class="where">{number}. {where}</span>'
        f'<div class="line"><b>intent</b>{intent}</div>'
        f'<div class="line"><b>gold</b>{marked_html(e.tokens, e.gold_spans, e.missed)}</div>'
        f'<div class="line"><b>predicted</b>'
        f"{marked_html(e.tokens, e.pred_spans, e.spurious)}</div></div>"
    )


def _headline(evaluation: EvaluationReport) -> str:
    r = evaluation.report
    rows = [
        (
            "slot precision / recall / F1",
            f"{r.slot.precision:.2f} / {r.slot.recall:.2f} / {r.slot.f1:.2f}",
        ),
        *(
            [
                (
                    "slot F1: spans with a word unseen in training / the rest",
                    f"{r.slot_unseen.f1:.2f} ({r.slot_unseen.support} spans) / "
                    f"{r.slot_seen.f1:.2f} ({r.slot_seen.support})",
                )
            ]
            if r.slot_unseen is not None and r.slot_seen is not None
            else []
        ),
        ("intent accuracy", f"{r.intent_accuracy:.2f}"),
        ("intent accuracy, any-of-gold rule", f"{r.intent_accuracy_any:.2f}"),
        ("sentence accuracy (intent and every tag)", f"{r.sentence_accuracy:.2f}"),
        *(
            [
                ("intent set accuracy (any order)", f"{r.intent_set_accuracy:.2f}"),
                ("intent F1 (single intents)", f"{r.intent_f1.f1:.2f}"),
                ("overall accuracy (intent set and every tag)", f"{r.overall_accuracy:.2f}"),
            ]
            if r.multi_intent and r.intent_f1 is not None
            else []
        ),
        ("utterances / with an error", f"{r.num_examples} / {len(evaluation.errors)}"),
    ]
    body = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="headline">{body}</table>'


def _worst_slots(scores: Mapping[str, SlotScore]) -> str:
    rows = worst_slots(dict(scores))
    if not rows:
        return "<p>Every span is right.</p>"
    body = "".join(
        f"<tr><td><code>{escape(label)}</code></td><td>{s.support - s.correct}</td>"
        f"<td>{s.predicted - s.correct}</td><td>{s.support}</td></tr>"
        for label, s in rows
    )
    return (
        "<table><tr><th>slot</th><th>missed</th><th>spurious</th><th>support</th></tr>"
        f"{body}</table>"
    )


def _confusions(evaluation: EvaluationReport) -> str:
    cells = evaluation.confusion.errors()
    if not cells:
        return "<p>No intent was confused.</p>"
    rows = "".join(
        f"<tr><td><code>{escape(g)}</code></td><td><code>{escape(p)}</code></td><td>{n}</td></tr>"
        for g, p, n in cells
    )
    return (
        '<div class="scroll"><table class="labels"><tr><th>gold</th><th>predicted</th>'
        "<th>utterances</th></tr>"
        f"{rows}</table></div>"
    )


def report_html(evaluation: EvaluationReport, images: Mapping[str, bytes]) -> str:
    """The whole report as one HTML page; `images["confusion"]` is the confusion matrix PNG."""
    r = evaluation.report
    title = escape(evaluation.title)
    meta = " · ".join(
        f"{escape(k)}: <code>{escape(str(v))}</code>" for k, v in evaluation.meta.items()
    )
    errors = "".join(_error_html(n, e) for n, e in enumerate(evaluation.errors, start=1))
    confusion = images.get("confusion")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nlu report: {title}</title>
<style>{STYLE}</style></head><body>
<h1>Evaluation: {title}</h1>
<p class="meta">{meta}</p>
<nav><a href="#summary">summary</a><a href="#slots">slots</a><a href="#intents">intents</a>
<a href="#errors">errors ({len(evaluation.errors)})</a></nav>
<h2 id="summary">Summary</h2>
{_headline(evaluation)}
<h2 id="slots">Slots</h2>
<p>Exact span match (conlleval). Support: gold spans. Most frequent slot first.</p>
{_score_table(r.per_slot, "slot", r.slot)}
<h3>Slots with the most wrong spans</h3>
{_worst_slots(r.per_slot)}
<h2 id="intents">Intents</h2>
<p>Exact label. Support: gold utterances.</p>
{_score_table(r.per_intent, "intent", None)}
<h3>Confusion matrix</h3>
{_image("confusion", confusion, "intent confusion matrix") if confusion else ""}
<h3>Confusions, most frequent first</h3>
{_confusions(evaluation)}
<h2 id="errors">Errors</h2>
<p>{len(evaluation.errors)} of {r.num_examples} utterances have a wrong intent or a wrong slot
span. <span class="span bad">red<sub>label</sub></span> marks a gold span the model missed (gold
line) or a span it predicted that is not gold (predicted line).</p>
{errors}
</body></html>
"""
