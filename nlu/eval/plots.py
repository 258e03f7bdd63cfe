"""PNG figures: intent confusion matrix, training curves, gradient flow. Each returns PNG bytes.

matplotlib is imported inside each function, so importing this module (or anything on the
inference path) never loads it, and figures are built with `Figure` rather than pyplot: no global
backend state, safe in threads and on machines without a display.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from nlu.eval.metrics import Confusion

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 110


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def short_labels(labels: Sequence[str]) -> tuple[list[str], str]:
    """Labels without the prefix they all share up to an underscore ("atis_"), and that prefix.

    Each part of a multi-intent label ("atis_airfare#atis_flight") loses it too.
    """
    prefix = os.path.commonprefix(list(labels)) if len(labels) > 1 else ""
    prefix = prefix[: prefix.rfind("_") + 1]
    if not prefix:
        return list(labels), ""
    return ["#".join(p.removeprefix(prefix) for p in label.split("#")) for label in labels], prefix


def confusion_png(confusion: Confusion, title: str = "intent confusion") -> bytes:
    """Gold intents down, predicted across; right answers blue, confusions red, counts written."""
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    counts = np.array(confusion.counts, dtype=float)  # (N, N)
    n = len(confusion.labels)
    labels, prefix = short_labels(confusion.labels)
    side = max(4.0, 0.32 * n + 2.5)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    eye = np.eye(n, dtype=bool)
    # Log colours, each set of cells on its own scale: one dominant intent (ATIS's flight) would
    # otherwise wash out everything else, and a single confusion must still show.
    for cells, cmap in ((eye, "Blues"), (~eye, "Reds")):
        top = max(2.0, float(counts[cells].max(initial=0)))
        shown = np.ma.masked_where(~cells | (counts == 0), counts)
        norm = LogNorm(vmin=0.3, vmax=top * 1.5)
        ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    for i, j in zip(*np.nonzero(counts)):
        dark = counts[i, j] > counts.max() ** 0.6
        ax.text(
            j,
            i,
            str(int(counts[i, j])),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "black",
        )
    ax.set_xticks(range(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("gold intent")
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="#dddddd", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    ax.set_title(title + (f" ({prefix!r} prefix left out)" if prefix else ""), fontsize=10)
    return _png(fig)


def curves_png(
    epochs: Sequence[int],
    columns: Mapping[str, Sequence[float | None]],
    best_epoch: int | None = None,
    title: str = "",
) -> bytes:
    """Loss, dev slot F1 and dev accuracies per epoch (and gradient norms when logged).

    `columns` maps a logged metric name (`train_loss_epoch`, `val_slot_f1`, ...) to one value
    per epoch (None where it was not logged); `best_epoch` (1-based) is marked.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = [
        ("loss", [("train_loss_epoch", "train"), ("val_loss", "dev")]),
        ("dev slot F1 (%)", [("val_slot_f1", "slot F1")]),
        (
            "dev accuracy (%)",
            [("val_intent_accuracy", "intent"), ("val_sentence_accuracy", "sentence")],
        ),
    ]
    if "train_grad_norm" in columns:
        panels.append(("gradient norm before clipping", [("train_grad_norm", "epoch mean")]))
    rows, cols = (2, 2) if len(panels) == 4 else (1, len(panels))
    fig = Figure(figsize=(4.6 * cols, 3.4 * rows))
    for k, (ylabel, lines) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, k + 1)
        if ylabel.startswith("gradient"):
            _clipped_axis(ax, epochs, columns.get("train_grad_clipped", []))
        for name, label in lines:
            points = [(e, v) for e, v in zip(epochs, columns.get(name, [])) if v is not None]
            if points:
                ax.plot(*zip(*points), marker=".", label=label)
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label="best epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def _clipped_axis(ax, epochs: Sequence[int], clipped: Sequence[float | None]) -> None:
    points = [(e, 100 * v) for e, v in zip(epochs, clipped) if v is not None]
    if not points:
        return
    twin = ax.twinx()
    twin.bar(*zip(*points), color="tab:red", alpha=0.2, width=0.6)
    twin.set_ylabel("steps clipped (%, bars)", color="tab:red")
    twin.set_ylim(0, 100)
    ax.set_zorder(twin.get_zorder() + 1)  # the norm line in front of the bars
    ax.patch.set_visible(False)


def gradients_png(
    distances: Sequence[int],
    norms: Mapping[str, Mapping[str, Sequence[float]]],
    title: str = "",
) -> bytes:
    """One panel per stage (at init, after training), one line per encoder, log scale.

    `norms[panel title][line label][d]` is the mean norm of dL/dh_t where the loss is d steps
    after t; values that underflowed to 0 are left out (a log scale has no 0).
    """
    from matplotlib.figure import Figure

    stages = list(norms)
    fig = Figure(figsize=(5.0 * len(stages), 3.8))
    axes = [fig.add_subplot(1, len(stages), k + 1) for k in range(len(stages))]
    for ax, stage in zip(axes, stages):
        for encoder, values in norms[stage].items():
            points = [(d, v) for d, v in zip(distances, values) if v > 0]
            if points:
                ax.plot(*zip(*points), label=encoder)
        ax.set_yscale("log")
        ax.set_xlabel("distance from the loss (steps)")
        ax.set_ylabel("‖∂L/∂h_t‖")
        ax.set_title(stage, fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)
