"""Temperature scaling of intent confidences (Guo et al. 2017, "On Calibration of Modern
Neural Networks").

A chatbot thresholds on the intent confidence, so the confidence has to mean what it says:
among answers given with confidence 0.9, about 90 % should be right. One scalar T, fitted on
held-out data, divides the intent logits before the softmax. It changes no argmax, so no
prediction and no accuracy, only how sure the model says it is. Label smoothing needs it: with
`model.intent_label_smoothing=0.1` the top intent of an ATIS question got about 0.47 where it was
right 98 % of the time (docs/benchmarks-history.md).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nlu.features import IGNORE_INTENT

# 1/T is searched in this range: T from 0.01 (sharpen 100x) to 100 (flatten 100x).
MIN_INVERSE, MAX_INVERSE = 0.01, 100.0


def fit_temperature(logits: Tensor, targets: Tensor) -> float:
    """The T > 0 that minimises the mean negative log-likelihood of softmax(logits / T).

    logits: (N, C); targets: (N,) class ids, where `IGNORE_INTENT` (an intent unseen in
    training) leaves an example out. Returns 1.0 when no example is left.

    With b = 1/T the loss -b z_y + logsumexp(b z) is convex in b, so its derivative, the mean of
    E_p[z] - z_y, rises with b, and bisection finds its zero. If the loss still falls at the
    end of the range (held-out data the model separates perfectly), the range's end is taken.
    """
    keep = targets != IGNORE_INTENT
    logits, targets = logits[keep].double(), targets[keep]
    if not len(targets):
        return 1.0
    gold = logits.gather(1, targets.unsqueeze(1)).squeeze(1)  # (N,)

    def slope(inverse: float) -> float:
        probs = (logits * inverse).softmax(dim=1)
        return float(((probs * logits).sum(dim=1) - gold).mean())

    low, high = MIN_INVERSE, MAX_INVERSE
    if slope(high) <= 0:
        return 1.0 / high
    if slope(low) >= 0:
        return 1.0 / low
    for _ in range(60):  # the bracket shrinks to 100 * 2^-60
        middle = (low + high) / 2
        if slope(middle) < 0:
            low = middle
        else:
            high = middle
    return 2.0 / (low + high)


def calibrate_intents(parser, examples) -> float:
    """Fit the intent temperature of `parser`'s model on `examples` (held-out data with
    `tokens` and `intent`), set it in the model and return it."""
    logits = torch.from_numpy(parser.intent_logits([e.tokens for e in examples]))
    stoi = parser.vocabs.intents.stoi
    targets = torch.tensor([stoi.get(e.intent, IGNORE_INTENT) for e in examples])
    temperature = fit_temperature(logits, targets)
    parser.model.intent_head.temperature.fill_(temperature)
    return temperature
