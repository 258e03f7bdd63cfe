"""Reference computations the tests check the CRF against, kept out of the library because
nothing but the tests needs them: padded Viterbi tensors, marginals, log-space alpha and beta."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nlu.decode.forward_backward import ForwardBackward
from nlu.decode.viterbi import viterbi
from nlu.modules.crf import LinearChainCRF


def viterbi_tensors(crf: LinearChainCRF, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Viterbi's paths, (B, T) with 0 on padding, and their scores (B,)."""
    found, scores = viterbi(emissions, mask, crf.tables())
    paths = torch.zeros(mask.shape, dtype=torch.long)
    for b, path in enumerate(found):
        paths[b, : len(path)] = torch.tensor(path)
    return paths, torch.from_numpy(scores)


def marginals(crf: LinearChainCRF, emissions: Tensor, mask: Tensor) -> Tensor:
    """P(tag at t = k | sentence): (B, T, K), zero on padding, from the forward-backward's
    a * b in probability space."""
    fb = crf.forward_backward(emissions, mask)
    weight = np.exp(fb.scale_a + fb.scale_b - fb.log_z[:, None])  # (B, T)
    probs = torch.from_numpy(fb.a * fb.b * weight[:, :, None]).float()
    return probs * mask.unsqueeze(2)


def log_alpha_beta(fb: ForwardBackward) -> tuple[Tensor, Tensor, Tensor]:
    """alpha (B, T, K), beta (B, T, K) and log Z (B,) in log space."""
    with np.errstate(divide="ignore"):
        alpha = np.log(fb.a) + fb.scale_a[:, :, None]
        beta = np.log(fb.b) + fb.scale_b[:, :, None]
    return torch.from_numpy(alpha), torch.from_numpy(beta), torch.from_numpy(fb.log_z)
