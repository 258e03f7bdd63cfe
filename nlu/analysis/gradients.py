"""Gradient flow through recurrent encoders: why gates matter, measured.

For each encoder kind (same hidden size) a small classifier reads a long sequence and is scored at
its last step only. We unroll the encoder step by step, keep every hidden state h_t, and measure
||dL/dh_t||: how much of the loss's gradient reaches the state `T - 1 - t` steps before the loss.
A vanilla RNN multiplies the gradient by (roughly) the same Jacobian at each step, so it shrinks
geometrically; an LSTM's cell and a GRU's update gate give it a path that can stay near 1.

Measured twice: at initialisation, and after `train_steps` of Adam on a task that needs memory
(the class is the first symbol; every later symbol is noise). The encoders are the project's
`RNNEncoder`s (same initialisation as the real model); the measurement steps through their weights
with torch's cell functions, which compute exactly what the fused layers do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from nlu.files import write_bytes_atomic, write_text_atomic
from nlu.modules.encoder import RNNEncoder

GradientEncoder = Literal["rnn", "irnn", "lstm", "gru"]
GRADIENT_ENCODERS = ("rnn", "irnn", "lstm", "gru")
STAGES = ("init", "trained")
SUMMARY_DISTANCES = (1, 10, 30)  # distances whose decay the summary reports

State = Tensor | tuple[Tensor, Tensor]  # h, or (h, c) for the LSTM
Step = Callable[[Tensor, State], State]


@dataclass(frozen=True)
class GradientConfig:
    """What `nlu analyze gradients` measures; the defaults run in about a minute on 2 CPU cores."""

    encoders: list[GradientEncoder] = field(default_factory=lambda: list(GRADIENT_ENCODERS))
    hidden_dim: int = 64  # the same for every encoder
    input_dim: int = 32  # symbol embedding size
    num_classes: int = 4  # the first symbol is one of these; the label is which
    num_noise: int = 16  # symbols that fill the rest of the sequence
    seq_len: int = 100  # the loss is taken at the last step; distances go up to seq_len - 1
    batch_size: int = 32
    train_steps: int = 600  # Adam steps before the second measurement; 0 skips it
    lr: float = 0.01
    gradient_clip: float = 1.0  # max gradient norm while training
    measure_size: int = 256  # sequences averaged over in each measurement
    seed: int = 1
    # Steps this small gain nothing from more threads, and idle threads spin on a busy machine.
    num_threads: int = 1  # torch intra-op threads; 0 keeps torch's default


@dataclass(frozen=True)
class GradientFlow:
    """Mean ||dL/dh_t|| by distance d = T - 1 - t per stage and encoder; accuracy after training."""

    distances: list[int]
    norms: dict[str, dict[str, list[float]]]  # stage -> encoder -> one mean norm per distance
    accuracy: dict[
        str, float
    ]  # encoder -> held-out accuracy (%) after training (chance: 1/classes)
    seconds: float

    def decay(self, stage: str, encoder: str, distance: int) -> float:
        """||dL/dh|| at `distance` over its value at distance 0 (1.0 = no decay)."""
        values = self.norms[stage][encoder]
        return values[distance] / values[0] if values[0] > 0 else 0.0


class SequenceClassifier(nn.Module):
    """Embed symbols, encode left to right, classify from the last state."""

    def __init__(self, kind: str, cfg: GradientConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(cfg.num_classes + cfg.num_noise, cfg.input_dim)
        self.encoder = RNNEncoder(cfg.input_dim, cfg.hidden_dim, kind, bidirectional=False)
        self.output = nn.Linear(cfg.hidden_dim, cfg.num_classes)

    def forward(self, symbols: Tensor) -> Tensor:
        """symbols: (B, T) -> class logits (B, num_classes), from the state after the last step."""
        inputs = self.embedding(symbols)  # (B, T, E)
        mask = torch.ones(symbols.shape, dtype=torch.bool)
        states = self.encoder(inputs, mask)  # (B, T, H)
        return self.output(states[:, -1])


def make_batch(cfg: GradientConfig, size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """(symbols (B, T), labels (B,)): the label is the first symbol, the rest is noise."""
    labels = torch.randint(cfg.num_classes, (size,), generator=generator)
    noise = torch.randint(cfg.num_noise, (size, cfg.seq_len - 1), generator=generator)
    return torch.cat([labels[:, None], cfg.num_classes + noise], dim=1), labels


def step_function(rnn: nn.Module) -> Step:
    """One time step of a single-layer, one-directional fused `nn.RNN` / `nn.LSTM` / `nn.GRU`."""
    weights = (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
    if isinstance(rnn, nn.LSTM):
        return lambda x, state: tuple(torch.lstm_cell(x, state, *weights))
    if isinstance(rnn, nn.GRU):
        return lambda x, h: torch.gru_cell(x, h, *weights)
    cell = torch.rnn_relu_cell if rnn.nonlinearity == "relu" else torch.rnn_tanh_cell
    return lambda x, h: cell(x, h, *weights)


def unrolled_states(model: SequenceClassifier, symbols: Tensor) -> list[Tensor]:
    """Every hidden state h_t (B, H) of the encoder, computed one step at a time."""
    inputs = model.embedding(symbols)  # (B, T, E)
    step = step_function(model.encoder.rnn)
    h = inputs.new_zeros(symbols.shape[0], model.encoder.output_dim)
    state: State = (h, h) if isinstance(model.encoder.rnn, nn.LSTM) else h
    hidden = []
    for t in range(symbols.shape[1]):
        state = step(inputs[:, t], state)
        h = state[0] if isinstance(state, tuple) else state
        hidden.append(h)
    return hidden


def gradient_by_distance(model: SequenceClassifier, symbols: Tensor, labels: Tensor) -> list[float]:
    """Mean over sequences of ||dL/dh_t|| for d = T - 1 - t = 0, 1, ..., T - 1.

    The loss is summed over the batch, so each sequence's gradient is that of its own loss.
    """
    hidden = unrolled_states(model, symbols)
    for h in hidden:
        h.retain_grad()
    loss = nn.functional.cross_entropy(model.output(hidden[-1]), labels, reduction="sum")
    model.zero_grad()
    loss.backward()
    norms = [float(h.grad.norm(dim=1).mean()) for h in hidden]  # type: ignore[union-attr]
    return norms[::-1]  # index = distance from the loss


def train_classifier(
    model: SequenceClassifier, cfg: GradientConfig, generator: torch.Generator
) -> None:
    """`cfg.train_steps` of Adam on fresh batches, clipping the gradient norm."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for _ in range(cfg.train_steps):
        symbols, labels = make_batch(cfg, cfg.batch_size, generator)
        loss = nn.functional.cross_entropy(model(symbols), labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.gradient_clip)
        optimizer.step()


@torch.no_grad()
def accuracy(model: SequenceClassifier, symbols: Tensor, labels: Tensor) -> float:
    """Percent of sequences whose first symbol the model names."""
    return 100.0 * float((model(symbols).argmax(dim=1) == labels).float().mean())


def measure(cfg: GradientConfig) -> GradientFlow:
    """Gradient norms by distance for every encoder in `cfg`, at init and after training."""
    _check(cfg)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    started = time.perf_counter()
    # The same held-out sequences for every encoder and stage.
    probe = make_batch(cfg, cfg.measure_size, torch.Generator().manual_seed(cfg.seed + 1))
    norms: dict[str, dict[str, list[float]]] = {stage: {} for stage in STAGES}
    scores = {}
    for kind in cfg.encoders:
        torch.manual_seed(cfg.seed)  # every encoder starts from its own seeded init
        model = SequenceClassifier(kind, cfg)
        norms["init"][kind] = gradient_by_distance(model, *probe)
        if cfg.train_steps:
            train_classifier(model, cfg, torch.Generator().manual_seed(cfg.seed))
            norms["trained"][kind] = gradient_by_distance(model, *probe)
        scores[kind] = accuracy(model, *probe)
    norms = {stage: by_kind for stage, by_kind in norms.items() if by_kind}
    return GradientFlow(list(range(cfg.seq_len)), norms, scores, time.perf_counter() - started)


def _check(cfg: GradientConfig) -> None:
    if not cfg.encoders or len(set(cfg.encoders)) != len(cfg.encoders):
        raise ValueError(
            f"encoders: expected distinct names from {list(GRADIENT_ENCODERS)}, "
            f"found {cfg.encoders}"
        )
    for name in (
        "hidden_dim",
        "input_dim",
        "num_classes",
        "num_noise",
        "batch_size",
        "measure_size",
    ):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name}: expected at least 1, found {getattr(cfg, name)}")
    if cfg.seq_len < 2 or cfg.train_steps < 0:
        raise ValueError(
            f"expected seq_len >= 2 and train_steps >= 0, found {cfg.seq_len} and {cfg.train_steps}"
        )


def summary(flow: GradientFlow, cfg: GradientConfig) -> dict[str, Any]:
    """Decay (norm at d / norm at 0) at a few distances, and the LSTM-over-RNN ratio at 30."""
    distances = [d for d in (*SUMMARY_DISTANCES, cfg.seq_len - 1) if d < cfg.seq_len]
    decay = {
        stage: {
            kind: {str(d): flow.decay(stage, kind, d) for d in distances}
            for kind in flow.norms[stage]
        }
        for stage in flow.norms
    }
    out: dict[str, Any] = {"decay": decay, "accuracy": flow.accuracy, "seconds": flow.seconds}
    if {"rnn", "lstm"} <= set(cfg.encoders) and cfg.seq_len > 30:
        # How many times more the vanilla RNN's gradient shrinks than the LSTM's over 30 steps.
        out["rnn_vs_lstm_decay_30"] = {
            stage: _ratio(decay[stage]["lstm"]["30"], decay[stage]["rnn"]["30"]) for stage in decay
        }
    out["config"] = asdict(cfg)
    return out


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None  # None: underflowed to 0


def csv_rows(flow: GradientFlow) -> list[str]:
    """`stage,encoder,distance,grad_norm,relative` lines (relative = norm / norm at distance 0)."""
    rows = ["stage,encoder,distance,grad_norm,relative"]
    for stage, by_kind in flow.norms.items():
        for kind, values in by_kind.items():
            rows += [
                f"{stage},{kind},{d},{value:.6e},{flow.decay(stage, kind, d):.6e}"
                for d, value in zip(flow.distances, values)
            ]
    return rows


def write_gradient_flow(flow: GradientFlow, cfg: GradientConfig, out_dir: str | Path) -> Path:
    """Write gradients.csv, gradients.png and summary.json into `out_dir`; return it."""
    from nlu.eval.plots import gradients_png  # matplotlib loads here

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out}: expected a directory for the output, found a file")
    title = (
        f"loss at the last of {cfg.seq_len} steps; hidden size {cfg.hidden_dim}; "
        f"trained {cfg.train_steps} steps"
    )
    write_text_atomic(out / "gradients.csv", "\n".join(csv_rows(flow)) + "\n")
    panels = {
        "at initialisation": flow.norms["init"],
        **(
            {
                f"after {cfg.train_steps} training steps": {
                    f"{kind} (accuracy {flow.accuracy[kind]:.0f}%)": values
                    for kind, values in flow.norms["trained"].items()
                }
            }
            if "trained" in flow.norms
            else {}
        ),
    }
    write_bytes_atomic(out / "gradients.png", gradients_png(flow.distances, panels, title))
    write_text_atomic(out / "summary.json", json.dumps(summary(flow, cfg), indent=2) + "\n")
    return out
