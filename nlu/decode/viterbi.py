"""Viterbi decoding over `DecodeTables`: the best path of each sentence, and the k best of one."""

from __future__ import annotations

from typing import Any

import numpy as np

from nlu.decode.tables import DecodeTables, as_array


def viterbi(emissions: Any, mask: Any, tables: DecodeTables) -> tuple[list[list[int]], np.ndarray]:
    """The best tag path of each sentence, as a list trimmed to its length, and the paths'
    scores (B,).

    emissions: (B, T, K); mask: (B, T) bool with right padding. Dense, in NumPy: a step is three
    calls on a (B, K, K) array, and the back-pointers are followed in Python. The CRF's decoding
    runs it only on the sentences that the forward-backward leaves unproven (see
    `nlu.decode.forward_backward.best_paths`), a few in a batch.
    """
    em = as_array(emissions)  # (B, T, K)
    real = as_array(mask)  # (B, T)
    batch, seq_len, num_tags = em.shape
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


def kbest_paths(emissions: Any, k: int, tables: DecodeTables) -> list[tuple[list[int], float]]:
    """k-best Viterbi over one sentence: the `k` highest-scoring paths, best first.

    emissions: (T, K). Fewer than `k` paths come back when fewer exist (or are allowed).
    """
    em = as_array(emissions).astype(np.float64)
    seq_len, num_tags = em.shape
    trans = tables.trans.astype(np.float64)
    # score[r, j]: score of the r-th best prefix ending in tag j.
    score = np.full((k, num_tags), -np.inf)
    score[0] = tables.start + em[0]
    back = []
    for t in range(1, seq_len):
        # candidates[r * K + i, j] = score[r, i] + trans[i, j]
        candidates = (score[:, :, None] + trans).reshape(k * num_tags, num_tags)
        index = _top(candidates, k)  # (k, K): the k best rows of each column, best first
        back.append(index)
        score = np.take_along_axis(candidates, index, axis=0) + em[t]
    final = (score + tables.end).reshape(-1)  # position r * K + j
    results = []
    for position in _top(final[:, None], min(k, final.size))[:, 0].tolist():
        value = float(final[position])
        if value == -np.inf:
            break
        rank, tag = divmod(position, num_tags)
        path = [tag]
        for index in reversed(back):
            rank, tag = divmod(int(index[rank, tag]), num_tags)
            path.append(tag)
        results.append((path[::-1], value))
    return results


def _top(values: np.ndarray, k: int) -> np.ndarray:
    """Row indices of the `k` largest values of each column of (N, M), largest first; ties
    keep the lower index."""
    return np.argsort(-values, axis=0, kind="stable")[:k]
