import itertools

import pytest
import torch

from nlu.modules.crf import LinearChainCRF


def make_crf(num_tags: int = 4, seed: int = 0) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(num_tags)
    for p in crf.parameters():
        torch.nn.init.uniform_(p, -1, 1)
    return crf


@torch.no_grad()
def path_score(crf: LinearChainCRF, emissions: torch.Tensor, path) -> float:
    """Score of one tag sequence of one sentence, straight from the definition."""
    c = crf.crf
    total = c.start_transitions[path[0]] + emissions[0, path[0]]
    for t in range(1, len(path)):
        total = total + c.transitions[path[t - 1], path[t]] + emissions[t, path[t]]
    return float(total + c.end_transitions[path[-1]])


@pytest.mark.parametrize("length", [1, 2, 3])
def test_viterbi_and_marginals_match_brute_force(length):
    num_tags, max_len = 4, 3
    crf = make_crf(num_tags)
    emissions = torch.randn(2, max_len, num_tags)
    mask = torch.tensor([[True] * max_len, [True] * length + [False] * (max_len - length)])
    paths = crf.viterbi(emissions, mask)
    marginals = crf.marginals(emissions, mask).detach()
    for i, n in enumerate([max_len, length]):
        all_paths = list(itertools.product(range(num_tags), repeat=n))
        scores = torch.tensor([path_score(crf, emissions[i, :n], p) for p in all_paths])
        assert paths[i] == list(all_paths[int(scores.argmax())])
        probs = scores.softmax(dim=0)
        for t in range(n):
            for k in range(num_tags):
                expected = sum(float(p) for p, path in zip(probs, all_paths) if path[t] == k)
                assert float(marginals[i, t, k]) == pytest.approx(expected, abs=1e-5)
        assert float(marginals[i, n:].abs().sum()) == 0.0


def test_nll_is_minus_log_probability_of_the_path():
    crf = make_crf(3)
    emissions = torch.randn(1, 2, 3)
    mask = torch.ones(1, 2, dtype=torch.bool)
    all_paths = list(itertools.product(range(3), repeat=2))
    scores = torch.tensor([path_score(crf, emissions[0], p) for p in all_paths])
    log_z = torch.logsumexp(scores, dim=0)
    nll = crf.nll(emissions, torch.tensor([[2, 1]]), mask).detach()
    assert float(nll) == pytest.approx(
        float(log_z - path_score(crf, emissions[0], (2, 1))), abs=1e-5
    )
