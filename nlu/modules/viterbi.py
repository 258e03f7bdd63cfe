"""Viterbi decoding over `DecodeTables`: the best path of each sentence, and the k best of one."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nlu.modules.decode_tables import DecodeTables, as_array


def viterbi(
    emissions: Tensor, mask: Tensor, tables: DecodeTables
) -> tuple[list[list[int]], np.ndarray]:
    """The best tag path of each sentence, as a list trimmed to its length, and the paths'
    scores (B,).

    emissions: (B, T, K); mask: (B, T) bool with right padding. Dense, in NumPy: a step is three
    calls on a (B, K, K) array, and the back-pointers are followed in Python. The CRF's decoding
    runs it only on the sentences that the forward-backward leaves unproven (see
    `nlu.modules.forward_backward.best_paths`), a few in a batch.
    """
    batch, seq_len, num_tags = emissions.shape
    em = as_array(emissions)  # (B, T, K)
    real = mask.cpu().numpy()  # (B, T)
    full = bool(real.all())
    rows = np.arange(batch * num_tags)
    score = tables.start + em[:, 0]  # (B, K)
    back = []
    for t in range(1, seq_len):
        total = tables.into + score[:, None, :]  # (B, K, K_prev): score[b, i] + trans[i, j]
        index = total.argmax(axis=2)  # (B, K): the best previous tag of each tag
        best = total.reshape(-1, num_tags)[rows, index.reshape(-1)].reshape(batch, num_tags)
        following = best + em[:, t]
        score = following if full else np.where(real[:, t, None], following, score)
        back.append(index)
    final = score + tables.end  # (B, K)
    last = final.argmax(axis=1)  # (B,)
    lengths = [seq_len] * batch if full else real.sum(axis=1).tolist()
    paths = []
    for b, length in enumerate(lengths):
        tag = int(last[b])
        path = [tag]
        for t in range(length - 2, -1, -1):
            tag = int(back[t][b, tag])
            path.append(tag)
        paths.append(path[::-1])
    return paths, final[np.arange(batch), last]


def kbest_paths(emissions: Tensor, k: int, tables: DecodeTables) -> list[tuple[list[int], float]]:
    """k-best Viterbi over one sentence: the `k` highest-scoring paths, best first.

    emissions: (T, K). Fewer than `k` paths come back when fewer exist (or are allowed).
    """
    start, trans, end = (
        torch.from_numpy(a).to(emissions.device) for a in (tables.start, tables.trans, tables.end)
    )
    seq_len, num_tags = emissions.shape
    # score[r, j]: score of the r-th best prefix ending in tag j.
    score = torch.full((k, num_tags), float("-inf"), device=emissions.device)
    score[0] = start + emissions[0]
    back = []
    for t in range(1, seq_len):
        # candidates[r * K + i, j] = score[r, i] + trans[i, j]
        candidates = (score.unsqueeze(2) + trans).reshape(k * num_tags, num_tags)
        top, index = candidates.topk(k, dim=0)  # (k, K)
        back.append(index)
        score = top + emissions[t]
    final = (score + end).reshape(-1)  # position r * K + j
    best, flat = final.topk(min(k, final.numel()))
    results = []
    for value, position in zip(best.tolist(), flat.tolist()):
        if value == float("-inf"):
            break
        rank, tag = divmod(position, num_tags)
        path = [tag]
        for index in reversed(back):
            rank, tag = divmod(int(index[rank, tag]), num_tags)
            path.append(tag)
        results.append((path[::-1], value))
    return results
