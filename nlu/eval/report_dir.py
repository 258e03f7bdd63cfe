"""`write_report`: an `EvaluationReport` as a directory you can look at.

metrics.json     every score, per slot and per intent, and the confusion matrix
slots.md         per-slot precision / recall / F1 / support
intents.md       per-intent precision / recall / F1 / support, and the most common confusions
confusion.png    the intent confusion matrix
errors.md        each utterance with a wrong intent or a wrong span, gold against predicted
report.html      all of the above in one self-contained page (images embedded)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nlu.eval.report import EvaluationReport, errors_markdown, intents_markdown, slots_markdown
from nlu.eval.report_html import report_html
from nlu.files import write_bytes_atomic, write_text_atomic

REPORT_FILES = (
    "metrics.json",
    "slots.md",
    "intents.md",
    "confusion.png",
    "errors.md",
    "report.html",
)


def write_report(evaluation: EvaluationReport, out_dir: str | os.PathLike) -> Path:
    """Write the report directory (see the module docstring); each file is renamed into place."""
    from nlu.eval.plots import confusion_png  # matplotlib loads here, never on the inference path

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: expected a directory for the report, found a file")
    confusion = confusion_png(evaluation.confusion, f"intent confusion: {evaluation.title}")
    write_text_atomic(out / "metrics.json", json.dumps(evaluation.to_dict(), indent=2) + "\n")
    write_text_atomic(out / "slots.md", slots_markdown(evaluation))
    write_text_atomic(out / "intents.md", intents_markdown(evaluation))
    write_bytes_atomic(out / "confusion.png", confusion)
    write_text_atomic(out / "errors.md", errors_markdown(evaluation))
    write_text_atomic(out / "report.html", report_html(evaluation, {"confusion": confusion}))
    return out
