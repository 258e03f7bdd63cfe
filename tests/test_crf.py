import itertools

import numpy as np
import pytest
import torch

from nlu.decode import forward_backward as fb_module
from nlu.decode.confidence import CRFConfidence, SpanRequests
from nlu.decode.forward_backward import _scaled_forward_backward, best_paths
from nlu.decode.viterbi import viterbi
from nlu.modules.crf import LinearChainCRF
from nlu.modules.decode_tables import Constraints
from nlu.tags import allowed_starts, allowed_transitions
from tests.reference import log_alpha_beta, marginals, viterbi_tensors


def make_crf(num_tags: int = 4, seed: int = 0) -> LinearChainCRF:
    torch.manual_seed(seed)
    crf = LinearChainCRF(num_tags)
    for p in crf.crf.parameters():
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


def all_paths(crf, emissions, n, num_tags, allowed=None):
    paths = list(itertools.product(range(num_tags), repeat=n))
    if allowed is not None:
        ok, starts = allowed
        paths = [p for p in paths if p[0] in starts and all((a, b) in ok for a, b in zip(p, p[1:]))]
    scores = torch.tensor([path_score(crf, emissions[:n], p) for p in paths])
    return paths, scores


@pytest.mark.parametrize("length", [1, 2, 3])
def test_viterbi_and_marginals_match_brute_force(length):
    num_tags, max_len = 4, 3
    crf = make_crf(num_tags)
    emissions = torch.randn(2, max_len, num_tags)
    mask = torch.tensor([[True] * max_len, [True] * length + [False] * (max_len - length)])
    with torch.no_grad():
        paths, best = viterbi_tensors(crf, emissions, mask)
    probs_at = marginals(crf, emissions, mask)
    for i, n in enumerate([max_len, length]):
        candidates, scores = all_paths(crf, emissions[i], n, num_tags)
        assert paths[i, :n].tolist() == list(candidates[int(scores.argmax())])
        assert paths[i, n:].tolist() == [0] * (max_len - n)
        assert float(best[i]) == pytest.approx(float(scores.max()), abs=1e-5)
        probs = scores.softmax(dim=0)
        for t in range(n):
            for k in range(num_tags):
                expected = sum(float(p) for p, path in zip(probs, candidates) if path[t] == k)
                assert float(probs_at[i, t, k]) == pytest.approx(expected, abs=1e-5)
        assert float(probs_at[i, n:].abs().sum()) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_batched_viterbi_equals_pytorch_crf_decode(seed):
    torch.manual_seed(seed)
    num_tags, batch, max_len = 7, 16, 12
    crf = make_crf(num_tags, seed)
    emissions = torch.randn(batch, max_len, num_tags) * 3
    lengths = torch.randint(1, max_len + 1, (batch,))
    lengths[0] = max_len
    mask = torch.arange(max_len)[None, :] < lengths[:, None]
    assert crf.decode(emissions, mask) == crf.crf.decode(emissions, mask=mask)


def test_nll_is_minus_log_probability_of_the_path():
    crf = make_crf(3)
    emissions = torch.randn(1, 2, 3)
    mask = torch.ones(1, 2, dtype=torch.bool)
    _, scores = all_paths(crf, emissions[0], 2, 3)
    log_z = torch.logsumexp(scores, dim=0)
    nll = crf.nll(emissions, torch.tensor([[2, 1]]), mask).detach()
    expected = log_z - path_score(crf, emissions[0], (2, 1))
    assert float(nll) == pytest.approx(float(expected), abs=1e-5)


def test_kbest_matches_brute_force():
    num_tags, n, k = 3, 4, 7
    crf = make_crf(num_tags, seed=3)
    emissions = torch.randn(n, num_tags)
    candidates, scores = all_paths(crf, emissions, n, num_tags)
    order = scores.argsort(descending=True)[:k]
    with torch.no_grad():
        found = crf.kbest(emissions, k)
    assert [s for _, s in found] == pytest.approx([float(scores[i]) for i in order], abs=1e-5)
    assert found[0][0] == list(candidates[int(order[0])])
    for path, score in found:
        assert path_score(crf, emissions, path) == pytest.approx(score, abs=1e-5)
    assert len({tuple(p) for p, _ in found}) == k


def test_kbest_asks_for_more_than_exist():
    crf = make_crf(2)
    with torch.no_grad():
        assert len(crf.kbest(torch.randn(1, 2), 5)) == 2


def test_span_probability_matches_brute_force():
    crf = make_crf(4, seed=1)
    emissions = torch.randn(1, 4, 4)
    mask = torch.ones(1, 4, dtype=torch.bool)
    candidates, scores = all_paths(crf, emissions[0], 4, 4)
    probs = scores.softmax(dim=0)
    with torch.no_grad():
        fb = crf.forward_backward(emissions, mask)
        for start, span_tags in [(1, [1, 2]), (2, [1, 2]), (0, [1]), (3, [3]), (1, [1, 2, 2])]:
            stop = 2  # the span ends when the next tag is not I-x
            confidence = CRFConfidence(emissions, fb, crf.tables())
            (got,) = confidence.spans(SpanRequests.of([(0, start, span_tags, 4, stop)]))
            end = start + len(span_tags)
            expected = sum(
                float(p)
                for p, path in zip(probs, candidates)
                if list(path[start:end]) == span_tags and (end >= 4 or path[end] != stop)
            )
            assert got == pytest.approx(expected, abs=1e-5)


BIO_TAGS = ["O"] + [f"{p}-{t}" for t in "abcdefgh" for p in "BI"]  # 17 tags


@pytest.mark.parametrize("seed", range(3))
def test_large_peaked_batch_decodes_like_pytorch_crf(seed):
    torch.manual_seed(seed)
    num_tags, batch, max_len = len(BIO_TAGS), 32, 10
    crf = make_crf(num_tags, seed)
    emissions = torch.randn(batch, max_len, num_tags) * 12
    lengths = torch.randint(1, max_len + 1, (batch,))
    mask = torch.arange(max_len)[None, :] < lengths[:, None]
    with torch.no_grad():
        assert crf.decode(emissions, mask) == crf.crf.decode(emissions, mask=mask)


def test_bio_constraints_at_decode_time():
    tags = ["O", "B-x", "I-x", "B-y", "I-y"]
    allowed, starts = allowed_transitions(tags), allowed_starts(tags)
    crf = make_crf(5, seed=2)
    crf.crf.transitions.data[0, 2] = 10.0  # make the forbidden O -> I-x attractive
    emissions = torch.randn(1, 4, 5)
    mask = torch.ones(1, 4, dtype=torch.bool)
    crf.constrain(Constraints(allowed, starts))
    candidates, scores = all_paths(crf, emissions[0], 4, 5, allowed=(set(allowed), set(starts)))
    with torch.no_grad():
        assert crf.decode(emissions, mask)[0] == list(candidates[int(scores.argmax())])
        probs_at = marginals(crf, emissions, mask)
    assert float(probs_at[0, 0, 2]) == 0.0 and float(probs_at[0, 0, 4]) == 0.0


def test_span_requests_across_a_padded_batch_equal_one_at_a_time():
    crf = make_crf(5, seed=4)
    emissions = torch.randn(3, 6, 5)
    lengths = [6, 2, 4]
    mask = torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]
    requests = [
        (0, 1, [1, 2, 2], 6, 2),
        (1, 0, [3], 2, 4),
        (1, 0, [3, 4], 2, 4),
        (2, 3, [1], 4, -1),
        (2, 0, [0, 1], 4, 2),
    ]
    with torch.no_grad():
        fb = crf.forward_backward(emissions, mask)
        together = CRFConfidence(emissions, fb, crf.tables()).spans(SpanRequests.of(requests))
        for (index, start, tags, _, stop), got in zip(requests, together):
            n = lengths[index]
            alone_emissions = emissions[index : index + 1, :n]
            alone_mask = torch.ones(1, n, dtype=torch.bool)
            fb = crf.forward_backward(alone_emissions, alone_mask)
            confidence = CRFConfidence(alone_emissions, fb, crf.tables())
            (expected,) = confidence.spans(SpanRequests.of([(0, start, tags, n, stop)]))
            assert got == pytest.approx(expected, abs=1e-6)


def test_marginals_stay_finite_for_large_scores():
    crf = make_crf(6, seed=5)
    crf.crf.transitions.data *= 40
    emissions = torch.randn(2, 7, 6) * 100
    mask = torch.ones(2, 7, dtype=torch.bool)
    with torch.no_grad():
        probs_at = marginals(crf, emissions, mask)
    assert torch.isfinite(probs_at).all()
    torch.testing.assert_close(probs_at.sum(dim=2), torch.ones(2, 7), atol=1e-4, rtol=0)


def log_space_forward_backward(crf, emissions, mask):
    """alpha and beta by the textbook log-space recursions, one sentence at a time."""
    tables = crf.tables()
    start, trans, end = (torch.from_numpy(x) for x in (tables.start, tables.trans, tables.end))
    alphas, betas = torch.full_like(emissions, float("nan")), torch.full_like(emissions, 0.0)
    for b, n in enumerate(mask.sum(dim=1).tolist()):
        e = emissions[b]
        alphas[b, 0] = start + e[0]
        for t in range(1, n):
            alphas[b, t] = torch.logsumexp(alphas[b, t - 1, :, None] + trans, dim=0) + e[t]
        betas[b, n - 1] = end
        for t in range(n - 2, -1, -1):
            betas[b, t] = torch.logsumexp(trans + (e[t + 1] + betas[b, t + 1])[None, :], dim=1)
    return alphas, betas


@pytest.mark.parametrize("scale", [1.0, 60.0])  # 60: float32 underflows, float64 takes over
@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("lengths", [[6, 1, 3, 5], [6, 6, 6, 6], [6]])  # padded, unpadded
def test_scaled_forward_backward_equals_the_log_space_recursions(scale, constrained, lengths):
    torch.manual_seed(7)
    crf = make_crf(len(BIO_TAGS), seed=7)
    if constrained:
        crf.constrain(Constraints(allowed_transitions(BIO_TAGS), allowed_starts(BIO_TAGS)))
    emissions = torch.randn(len(lengths), 6, len(BIO_TAGS)) * scale
    lengths = torch.tensor(lengths)
    mask = torch.arange(6)[None, :] < lengths[:, None]
    with torch.no_grad():
        fb = crf.forward_backward(emissions, mask)
        probs = marginals(crf, emissions, mask)
        alphas, betas = log_space_forward_backward(crf, emissions, mask)
    for b, n in enumerate(lengths.tolist()):
        expected_z = torch.logsumexp(alphas[b, n - 1] + torch.from_numpy(crf.tables().end), dim=0)
        assert float(fb.log_z[b]) == pytest.approx(float(expected_z), rel=1e-5, abs=1e-3)
        # Entries below ~80 nats under the best of their step may come out as -inf: compare
        # the probability of each tag (what confidences use), not raw log-scores.
        alpha, beta, log_z = log_alpha_beta(fb)
        got = torch.exp(alpha[b, :n] + beta[b, :n] - log_z[b]).float()
        want = torch.exp(alphas[b, :n] + betas[b, :n] - expected_z)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(probs[b, :n], want, atol=1e-5, rtol=1e-4)


def test_frozen_tables_decode_the_same_and_training_drops_them():
    crf = make_crf(len(BIO_TAGS), seed=3)
    crf.constrain(Constraints(allowed_transitions(BIO_TAGS), allowed_starts(BIO_TAGS)))
    emissions = torch.randn(3, 5, len(BIO_TAGS)) * 3
    mask = torch.arange(5)[None, :] < torch.tensor([5, 2, 4])[:, None]
    with torch.no_grad():
        before = crf.decode(emissions, mask), marginals(crf, emissions, mask)
        crf.eval()
        crf.freeze()
        assert crf.tables() is crf.tables()  # built once
        assert crf.decode(emissions, mask) == before[0]
        torch.testing.assert_close(marginals(crf, emissions, mask), before[1])
        crf.train()
        crf.crf.transitions.add_(torch.randn_like(crf.crf.transitions) * 5)
        assert crf.tables() is not crf.tables()  # unfrozen: rebuilt from the new weights
        fresh = LinearChainCRF(len(BIO_TAGS))  # never frozen, same weights
        fresh.load_state_dict(crf.state_dict())
        fresh.constrain(Constraints(allowed_transitions(BIO_TAGS), allowed_starts(BIO_TAGS)))
        assert crf.decode(emissions, mask) == fresh.decode(emissions, mask)
        assert crf.decode(emissions, mask) != before[0]


@pytest.mark.parametrize("length", [1, 2, 5])
def test_one_padded_sentence_decodes_like_pytorch_crf(length):
    """One sentence, with or without padding."""
    crf = make_crf(len(BIO_TAGS), seed=length)
    emissions = torch.randn(1, 5, len(BIO_TAGS)) * 2
    mask = torch.arange(5)[None, :] < length
    with torch.no_grad():
        paths, score = viterbi_tensors(crf, emissions, mask)
        assert crf.decode(emissions, mask) == crf.crf.decode(emissions, mask=mask)
    assert paths[0, length:].tolist() == [0] * (5 - length)
    assert float(score) == pytest.approx(path_score(crf, emissions[0], paths[0, :length]), abs=1e-4)


def test_forward_backward_falls_back_to_float64_when_a_step_underflows():
    """The best tag of step 2 (I-x) cannot follow the only likely tag of step 1 (O), and
    everything else is 150 nats down: every float32 probability of step 2 is 0."""
    tags = ["O", "B-x", "I-x"]
    crf = make_crf(3, seed=0)
    crf.constrain(Constraints(allowed_transitions(tags), allowed_starts(tags)))
    emissions = torch.tensor([[[0.0, -1000.0, -1000.0], [-150.0, -150.0, 0.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    with torch.no_grad():
        narrow = _scaled_forward_backward(emissions, mask, crf.tables())
        assert not np.isfinite(narrow.log_z).all()
        fb = crf.forward_backward(emissions, mask)
        alphas, betas = log_space_forward_backward(crf, emissions, mask)
    assert fb.a.dtype == np.float64  # computed again, wide
    expected_z = torch.logsumexp(alphas[0, 1] + torch.from_numpy(crf.tables().end), dim=0)
    assert float(fb.log_z[0]) == pytest.approx(float(expected_z), abs=1e-3)
    alpha, beta, log_z = log_alpha_beta(fb)
    probs = torch.exp(alpha + beta - log_z[:, None, None])[0]
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2, dtype=torch.float64))


@pytest.mark.parametrize("batch", [1, 2, 5, 8, 40])
def test_viterbi_equals_pytorch_crf_decode(batch):
    """Viterbi itself, on every sentence (decoding calls it only where the forward-backward
    leaves a path unproven)."""
    torch.manual_seed(batch)
    num_tags, max_len = len(BIO_TAGS), 9
    crf = make_crf(num_tags, batch)
    emissions = torch.randn(batch, max_len, num_tags) * 3
    lengths = torch.randint(1, max_len + 1, (batch,))
    lengths[0] = max_len
    mask = torch.arange(max_len)[None, :] < lengths[:, None]
    paths, scores = viterbi_tensors(crf, emissions, mask)
    expected = crf.crf.decode(emissions, mask=mask)
    assert viterbi(emissions, mask, crf.tables())[0] == expected
    assert crf.decode(emissions, mask) == expected
    for b in range(batch):
        n = int(lengths[b])
        assert paths[b, n:].tolist() == [0] * (max_len - n)
        expected = path_score(crf, emissions[b, :n], paths[b, :n].tolist())
        assert float(scores[b]) == pytest.approx(float(expected), abs=1e-4)


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("batch", [1, 3, 16])
def test_best_paths_equal_viterbi_peaked_or_flat(constrained, padded, batch, monkeypatch):
    """Paths read off the forward-backward where their probability proves them, Viterbi for the
    rest: the result is Viterbi's either way. Peaked scores take the shortcut for most
    sentences; flat ones rarely do, and there the tag of highest marginal at each position is
    sometimes not the best path (a case the shortcut must not take)."""
    searched = []  # how many sentences each call of best_paths left to Viterbi

    def counting(emissions, mask, tables):
        searched.append(emissions.shape[0])
        return viterbi(emissions, mask, tables)

    monkeypatch.setattr(fb_module, "viterbi", counting)
    num_tags, max_len = len(BIO_TAGS), 7
    crf = make_crf(num_tags, seed=batch)
    if constrained:
        crf.constrain(Constraints(allowed_transitions(BIO_TAGS), allowed_starts(BIO_TAGS)))
    differing, totals = 0, {0.3: 0, 20.0: 0}
    for trial in range(40):
        torch.manual_seed(trial)
        scale = 20.0 if trial % 2 else 0.3
        emissions = torch.randn(batch, max_len, num_tags) * scale
        lengths = torch.randint(1, max_len + 1, (batch,)) if padded else torch.full((batch,), 7)
        lengths[0] = max_len
        mask = torch.arange(max_len)[None, :] < lengths[:, None]
        with torch.no_grad():
            expected, _ = viterbi(emissions, mask, crf.tables())
            fb = crf.forward_backward(emissions, mask)
            assert best_paths(fb, emissions, mask, crf.tables()) == expected
            posterior = marginals(crf, emissions, mask).argmax(dim=2)
        totals[scale] += sum(searched)
        searched.clear()
        for b, path in enumerate(expected):
            differing += posterior[b, : len(path)].tolist() != path
    sentences = 20 * batch
    assert totals[20.0] < sentences / 2  # peaked: most proved without Viterbi
    assert totals[0.3] > sentences / 2  # flat: most left to Viterbi
    assert differing > 0  # the flat trials hold the hard case


def _likelihood_inputs(batch: int, length: int, num_tags: int, scale: float, seed: int):
    crf = make_crf(num_tags, seed)
    with torch.no_grad():
        for p in crf.crf.parameters():
            p.mul_(scale)
    g = torch.Generator().manual_seed(seed)
    emissions = (torch.randn(batch, length, num_tags, generator=g) * scale).requires_grad_()
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length
    mask = torch.arange(length)[None] < lengths[:, None]
    tags = torch.randint(0, num_tags, (batch, length), generator=g)
    return crf, emissions, tags, mask


def _nll_and_grads(crf: LinearChainCRF, emissions, tags, mask, likelihood: str):
    crf.likelihood = likelihood
    nll = crf.nll(emissions, tags, mask)
    inputs = [emissions, *crf.crf.parameters()]
    # pytorch-crf leaves the transitions out of the graph when no sentence has two tokens.
    grads = torch.autograd.grad(nll, inputs, allow_unused=True, materialize_grads=True)
    return nll, grads


@pytest.mark.parametrize(
    ("batch", "length", "num_tags", "scale"),
    [(1, 1, 3, 1.0), (7, 9, 5, 1.0), (32, 20, 120, 3.0), (5, 30, 12, 10.0)],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_scaled_likelihood_and_its_gradients_equal_pytorch_crf(batch, length, num_tags, scale,
                                                               seed):  # fmt: skip
    crf, emissions, tags, mask = _likelihood_inputs(batch, length, num_tags, scale, seed)
    ours, our_grads = _nll_and_grads(crf, emissions, tags, mask, "scaled")
    oracle, oracle_grads = _nll_and_grads(crf, emissions, tags, mask, "pytorch-crf")
    torch.testing.assert_close(ours, oracle, rtol=1e-5, atol=1e-4)
    for mine, theirs in zip(our_grads, oracle_grads):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_scaled_likelihood_takes_the_log_space_road_when_float_underflows():
    # Tag 0 is the only way to the top transition score, 300 nats above the rest, and it never
    # emits: every product underflows in float32, the scaled recursion gives inf or nan, and
    # nll falls back to pytorch-crf's recursion for the batch.
    from nlu.modules.crf import scaled_nll

    crf, emissions, tags, mask = _likelihood_inputs(4, 6, 5, 1.0, 0)
    with torch.no_grad():
        crf.crf.transitions[0, 0] = 300.0
        emissions[:, :, 0] = -300.0
    c = crf.crf
    direct = scaled_nll(emissions, tags, mask, c.start_transitions, c.transitions,
                        c.end_transitions)  # fmt: skip
    assert not torch.isfinite(direct).all()
    ours, _ = _nll_and_grads(crf, emissions, tags, mask, "scaled")
    oracle, _ = _nll_and_grads(crf, emissions, tags, mask, "pytorch-crf")
    assert torch.isfinite(ours) and torch.equal(ours, oracle)


def test_an_unknown_likelihood_is_refused_by_name():
    with pytest.raises(ValueError, match="model.crf_likelihood: expected one of"):
        LinearChainCRF(4, likelihood="fast")
