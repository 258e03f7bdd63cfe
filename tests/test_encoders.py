"""Every encoder kind against a one-step-at-a-time reference written from its equations."""

import pytest
import torch

from nlu.modules.encoder import ENCODER_KINDS, PeepholeLSTM, RNNEncoder, reverse_padded

E, H = 5, 4


def sigmoid(x):
    return torch.sigmoid(x)


def elman(x, h, p, act):
    return act(x @ p["W"].T + p["b"] + h @ p["U"].T + p["c"])


def lstm(x, h, c, p):
    gates = x @ p["W"].T + p["b"] + h @ p["U"].T + p["c"]
    i, f, g, o = gates.chunk(4, dim=-1)
    c = sigmoid(f) * c + sigmoid(i) * torch.tanh(g)
    return sigmoid(o) * torch.tanh(c), c


def gru(x, h, p):
    """The issue's form: z is the update gate, h_t = (1 - z) * h_{t-1} + z * h~."""
    xr, xz, xn = (x @ p["W"].T + p["b"]).chunk(3, dim=-1)
    hr, hz, hn = (h @ p["U"].T + p["c"]).chunk(3, dim=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    candidate = torch.tanh(xn + r * hn)
    return (1 - z) * h + z * candidate


def peephole(x, h, c, p):
    gates = x @ p["W"].T + p["b"] + h @ p["U"].T
    i, f, g, o = gates.chunk(4, dim=-1)
    i = sigmoid(i + p["pi"] * c)
    f = sigmoid(f + p["pf"] * c)
    c = f * c + i * torch.tanh(g)
    o = sigmoid(o + p["po"] * c)
    return o * torch.tanh(c), c


def run(kind, xs, p):
    """Reference over one sentence xs (T, E), one step at a time."""
    h, c, out = torch.zeros(H), torch.zeros(H), []
    for x in xs:
        if kind == "rnn":
            h = elman(x, h, p, torch.tanh)
        elif kind == "irnn":
            h = elman(x, h, p, torch.relu)
        elif kind == "gru":
            h = gru(x, h, p)
        elif kind == "lstm":
            h, c = lstm(x, h, c, p)
        else:
            h, c = peephole(x, h, c, p)
        out.append(h)
    return torch.stack(out)


def direction_params(encoder, kind, suffix=""):
    """Reference parameters read from the encoder's weights (one direction of layer 0)."""
    rnn = encoder.rnn
    if kind == "peephole_lstm":
        layer, d = rnn.layers[0], 1 if suffix else 0
        pi, pf, po = layer.peephole[d]
        return {
            "W": layer.weight_ih[d].T,
            "U": layer.weight_hh[d].T,
            "b": layer.bias[d],
            "pi": pi,
            "pf": pf,
            "po": po,
        }
    p = {
        "W": getattr(rnn, f"weight_ih_l0{suffix}"),
        "U": getattr(rnn, f"weight_hh_l0{suffix}"),
        "b": getattr(rnn, f"bias_ih_l0{suffix}"),
        "c": getattr(rnn, f"bias_hh_l0{suffix}"),
    }
    if kind == "gru":
        # PyTorch writes h' = (1 - z') * n + z' * h, so its z' is 1 - z: negate the z rows.
        p = {k: v.clone() for k, v in p.items()}
        for k in p:
            p[k][H : 2 * H] *= -1
    return p


@pytest.mark.parametrize("kind", ENCODER_KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fast_path_equals_reference_equations(kind, bidirectional):
    torch.manual_seed(0)
    encoder = RNNEncoder(E, H, kind=kind, bidirectional=bidirectional).eval()
    if kind == "irnn":  # its init is near-identity; random weights test the equations better
        for param in encoder.parameters():
            torch.nn.init.uniform_(param, -0.5, 0.5)
    lengths = [6, 3]
    inputs = torch.randn(2, 6, E)
    mask = torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]
    with torch.no_grad():
        states = encoder(inputs, mask)
        for b, n in enumerate(lengths):
            forward = run(kind, inputs[b, :n], direction_params(encoder, kind))
            torch.testing.assert_close(states[b, :n, :H], forward, atol=1e-5, rtol=0)
            if bidirectional:
                backward = run(
                    kind, inputs[b, :n].flip(0), direction_params(encoder, kind, "_reverse")
                )
                torch.testing.assert_close(states[b, :n, H:], backward.flip(0), atol=1e-5, rtol=0)
            assert states[b, n:].abs().sum() == 0


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_padding_never_changes_a_real_token(kind):
    torch.manual_seed(1)
    encoder = RNNEncoder(E, H, kind=kind, num_layers=2, dropout=0.3).eval()
    sentence = torch.randn(1, 4, E)
    batch = torch.cat([torch.cat([sentence, torch.randn(1, 3, E)], dim=1), torch.randn(1, 7, E)])
    mask = torch.tensor([[True] * 4 + [False] * 3, [True] * 7])
    with torch.no_grad():
        alone = encoder(sentence, torch.ones(1, 4, dtype=torch.bool))
        padded = encoder(batch, mask)
    torch.testing.assert_close(padded[0, :4], alone[0], atol=1e-6, rtol=0)
    assert padded[0, 4:].abs().sum() == 0


def test_irnn_starts_from_the_identity():
    encoder = RNNEncoder(E, H, kind="irnn", num_layers=2)
    rnn = encoder.rnn
    for name, param in rnn.named_parameters():
        if name.startswith("weight_hh"):
            assert torch.equal(param, torch.eye(H))
        elif name.startswith("bias"):
            assert param.abs().sum() == 0
        else:
            assert param.std() < 0.01


@pytest.mark.parametrize("kind", ["lstm", "peephole_lstm"])
def test_forget_gate_bias(kind):
    encoder = RNNEncoder(E, H, kind=kind, forget_bias=2.5)
    if kind == "lstm":
        total = encoder.rnn.bias_ih_l0[H : 2 * H] + encoder.rnn.bias_hh_l0[H : 2 * H]
    else:
        total = encoder.rnn.layers[0].bias[0, H : 2 * H]
    assert torch.allclose(total, torch.full((H,), 2.5))


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(
        ValueError, match=r"unknown encoder 'lstmm'; expected one of \['rnn', 'irnn'"
    ):
        RNNEncoder(E, H, kind="lstmm")


def test_reverse_padded():
    x = torch.arange(8.0).view(2, 4, 1)
    got = reverse_padded(x, torch.tensor([4, 2]))
    assert got[:, :, 0].tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


def test_peephole_gradients_flow():
    layer = PeepholeLSTM(E, H, num_layers=2)
    out = layer(torch.randn(3, 5, E), torch.ones(3, 5, dtype=torch.bool))
    out.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())


@pytest.mark.parametrize("kind", ENCODER_KINDS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_frozen_encoder_equals_the_packed_one(kind, bidirectional):
    """`freeze` runs padded batches one direction at a time: the same states as packing."""
    torch.manual_seed(2)
    encoder = RNNEncoder(E, H, kind=kind, num_layers=2, bidirectional=bidirectional).eval()
    inputs = torch.randn(4, 7, E)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 2, 5, 1])[:, None]
    with torch.no_grad():
        packed = (
            encoder(inputs, mask)
            if kind == "peephole_lstm"
            else encoder._forward_packed(inputs, mask)
        )
        encoder.freeze()
        split = encoder(inputs, mask)
    # Only PyTorch's fused float layers are split; the peephole LSTM never packs.
    assert (encoder._directions is not None) == (kind != "peephole_lstm")
    torch.testing.assert_close(split, packed, atol=1e-6, rtol=0)
    encoder.train()
    assert encoder._directions is None  # training drops the frozen modules


@pytest.mark.parametrize("kind", ["rnn", "irnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_training_on_the_cpu_splits_directions_with_the_packed_states_and_gradients(
    kind, bidirectional
):
    """On a CPU a padded training batch runs one direction at a time through modules that
    share the encoder's parameters: the states and every gradient are those of packing."""
    torch.manual_seed(3)
    encoder = RNNEncoder(E, H, kind=kind, num_layers=2, bidirectional=bidirectional).train()
    inputs = torch.randn(4, 7, E)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 2, 5, 1])[:, None]
    weights = torch.randn(4, 7, encoder.output_dim) * mask.unsqueeze(2)

    def run(forward):
        encoder.zero_grad()
        states = forward(inputs, mask)
        (states * weights).sum().backward()
        return states.detach(), [p.grad.clone() for p in encoder.parameters()]

    rng = torch.get_rng_state()
    split, split_grads = run(encoder)
    # Building the split modules draws no random numbers: a resumed run, which builds them at
    # another step, must draw the dropout masks of an uninterrupted one.
    assert torch.equal(torch.get_rng_state(), rng)
    packed, packed_grads = run(encoder._forward_packed)
    assert encoder._split(encoder.rnn)[0][0].weight_hh_l0 is encoder.rnn.weight_hh_l0
    torch.testing.assert_close(split * mask.unsqueeze(2), packed, atol=1e-6, rtol=0)
    for mine, theirs in zip(split_grads, packed_grads, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-5)
    assert not any("_split" in name for name, _ in encoder.named_parameters())


def test_frozen_encoder_shares_the_weights():
    encoder = RNNEncoder(E, H, kind="lstm").eval()
    encoder.freeze()
    forward, backward = encoder._directions[0]
    assert forward.weight_hh_l0 is encoder.rnn.weight_hh_l0
    assert backward.weight_ih_l0 is encoder.rnn.weight_ih_l0_reverse
    assert not any(name.startswith("_directions") for name, _ in encoder.named_parameters())


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_bfloat16_frozen_encoder_is_close_and_keeps_float32_weights(kind):
    torch.manual_seed(3)
    encoder = RNNEncoder(E, H, kind=kind, num_layers=2).eval()
    inputs = torch.randn(3, 6, E)
    mask = torch.arange(6)[None, :] < torch.tensor([6, 4, 2])[:, None]
    with torch.no_grad():
        exact = encoder(inputs, mask)
        encoder.freeze(torch.bfloat16)
        half = encoder(inputs, mask)
        one = encoder(inputs[:1], mask[:1])  # one sentence: the fused float32 module
    assert half.dtype == torch.float32 and bool((half[~mask] == 0).all())
    torch.testing.assert_close(half, exact, atol=0.03, rtol=0)
    torch.testing.assert_close(one, exact[:1], atol=1e-6, rtol=0)
    assert all(p.dtype == torch.float32 for p in encoder.parameters())
    with pytest.raises(ValueError, match="batch_dtype: expected float32 or bfloat16"):
        encoder.freeze(torch.float16)
