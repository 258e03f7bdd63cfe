"""The gradient-flow diagnostic: the unrolled steps, the measured norms, and what is written."""

import json

import pytest
import torch

from nlu.analysis.gradients import (
    GRADIENT_ENCODERS,
    GradientConfig,
    SequenceClassifier,
    gradient_by_distance,
    make_batch,
    measure,
    unrolled_states,
    write_gradient_flow,
)
from nlu.config import load_section

TINY = GradientConfig(
    hidden_dim=8, input_dim=4, seq_len=12, batch_size=4, train_steps=3, measure_size=5
)


@pytest.mark.parametrize("kind", GRADIENT_ENCODERS)
def test_unrolled_steps_compute_what_the_fused_encoder_does(kind):
    torch.manual_seed(0)
    model = SequenceClassifier(kind, TINY)
    symbols, _ = make_batch(TINY, 3, torch.Generator().manual_seed(0))
    fused = model.encoder(model.embedding(symbols), torch.ones(symbols.shape, dtype=torch.bool))
    stepped = torch.stack(unrolled_states(model, symbols), dim=1)  # (B, T, H)
    torch.testing.assert_close(stepped, fused, rtol=1e-5, atol=1e-6)


def test_gradient_shrinks_by_the_recurrent_weight_per_step():
    # h_t = tanh(0.5 h_{t-1}) stays at 0, where tanh' = 1: dL/dh_{T-1-d} = 0.5^d dL/dh_{T-1}.
    torch.manual_seed(0)
    model = SequenceClassifier("rnn", TINY)
    rnn = model.encoder.rnn
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(0.5 * torch.eye(TINY.hidden_dim))
        for p in (rnn.weight_ih_l0, rnn.bias_ih_l0, rnn.bias_hh_l0):
            p.zero_()
    symbols, labels = make_batch(TINY, 5, torch.Generator().manual_seed(0))
    norms = gradient_by_distance(model, symbols, labels)
    assert len(norms) == TINY.seq_len and norms[0] > 0
    assert norms == pytest.approx([norms[0] * 0.5**d for d in range(TINY.seq_len)], rel=1e-5)


def test_vanilla_rnn_gradient_vanishes_faster_than_the_lstm_one_at_init():
    cfg = GradientConfig(hidden_dim=16, input_dim=8, seq_len=31, train_steps=0, measure_size=32)
    flow = measure(cfg)
    assert set(flow.norms) == {"init"}  # train_steps=0: one measurement
    assert flow.decay("init", "rnn", 30) < flow.decay("init", "lstm", 30) / 10


def test_measure_and_write_all_encoders(tmp_path):
    flow = measure(TINY)
    out = write_gradient_flow(flow, TINY, tmp_path / "grad")
    rows = (out / "gradients.csv").read_text().splitlines()
    assert rows[0] == "stage,encoder,distance,grad_norm,relative"
    assert len(rows) == 1 + 2 * len(GRADIENT_ENCODERS) * TINY.seq_len
    first = rows[1].split(",")
    assert first[:3] == ["init", "rnn", "0"] and float(first[4]) == 1.0
    assert (out / "gradients.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["decay"]["trained"]) == set(GRADIENT_ENCODERS)
    assert summary["config"]["seq_len"] == TINY.seq_len
    assert 0.0 <= summary["accuracy"]["gru"] <= 100.0


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("encoders: [rnn, peephole_lstm]\n")
    with pytest.raises(ValueError, match=r"g.yaml: encoders: expected .*'rnn'.*found \['rnn', 'p"):
        load_section(GradientConfig, path)
    with pytest.raises(ValueError, match="unknown key seqlen; valid keys: encoders, hidden_dim"):
        load_section(GradientConfig, None, ["seqlen=3"])
    with pytest.raises(ValueError, match="encoders: expected distinct names"):
        measure(GradientConfig(encoders=["rnn", "rnn"]))
    with pytest.raises(ValueError, match="expected seq_len >= 2 and train_steps >= 0, found 1"):
        measure(GradientConfig(seq_len=1))


def test_shipped_config_is_the_defaults_and_opens_with_the_command():
    from pathlib import Path

    path = Path(__file__).parent.parent / "configs" / "analysis" / "gradients.yaml"
    assert load_section(GradientConfig, path) == GradientConfig()
    assert path.read_text().startswith(
        f"# Measure: nlu analyze gradients configs/analysis/{path.name}"
    )
