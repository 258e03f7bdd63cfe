"""Recurrent encoders over padded batches; padding never reaches the recurrent states.

Five kinds, all (bi)directional and stackable with dropout between layers:
- `rnn`: Elman RNN, h_t = tanh(W x_t + U h_{t-1} + b) (PyTorch's fused `nn.RNN`);
- `irnn`: ReLU RNN with U = I and zero recurrent bias, small random W (Le, Jaitly & Hinton 2015);
- `lstm`: PyTorch's fused `nn.LSTM`, forget-gate bias set to `forget_bias` (default 1.0);
- `peephole_lstm`: LSTM whose input and forget gates see c_{t-1} and whose output gate sees c_t
  through diagonal weights (Gers & Schmidhuber 2000); ours, see `PeepholeLSTM`;
- `gru`: PyTorch's fused `nn.GRU`, h_t = (1 - z_t) * h_{t-1} + z_t * h~_t.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlu.modules.dropout import Dropout

EncoderKind = Literal["rnn", "irnn", "lstm", "peephole_lstm", "gru"]
ENCODER_KINDS = ("rnn", "irnn", "lstm", "peephole_lstm", "gru")
IRNN_INPUT_STD = 0.001  # Le et al. draw the input weights from N(0, 0.001)


class RNNEncoder(nn.Module):
    """A (bi)directional, possibly stacked recurrent encoder of one of `ENCODER_KINDS`."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 200,
        kind: EncoderKind = "lstm",
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        if kind not in ENCODER_KINDS:
            raise ValueError(f"unknown encoder {kind!r}; expected one of {list(ENCODER_KINDS)}")
        if num_layers < 1:
            raise ValueError(f"expected num_layers >= 1, got {num_layers}")
        self.kind = kind
        self.bidirectional = bidirectional
        self._directions: list[list[nn.RNNBase]] | None = None  # see `freeze`
        # One-direction float32 modules sharing self.rnn's parameters: the CPU path for padded
        # batches, in training too.
        self._split = DirectionSplit()
        self.output_dim = hidden_dim * (2 if bidirectional else 1)
        between = dropout if num_layers > 1 else 0.0
        self.between = Dropout(between)
        if kind == "peephole_lstm":
            self.rnn: nn.Module = PeepholeLSTM(
                input_dim, hidden_dim, num_layers, bidirectional, between, forget_bias
            )
            return
        fused = {"rnn": nn.RNN, "irnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        extra = {"nonlinearity": "relu"} if kind == "irnn" else {}
        self.rnn = fused(
            input_dim,
            hidden_dim,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=True,
            dropout=between,
            **extra,
        )
        if kind == "irnn":
            _init_irnn(self.rnn)
        elif kind == "lstm":
            _init_forget_bias(self.rnn, hidden_dim, forget_bias)

    def forward(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """inputs: (B, T, E), mask: (B, T) bool -> states (B, T, output_dim), zero on padding."""
        if isinstance(self.rnn, PeepholeLSTM):
            return self.rnn(inputs, mask)
        if torch.onnx.is_in_onnx_export() and (split := self._split(self.rnn)) is not None:
            return self._forward_as_onnx(inputs, mask, split)
        if self._directions is not None and inputs.shape[0] > 1:
            return self._forward_by_direction(inputs, mask)  # frozen, for batches
        if bool(mask.all()):
            # No padding (always so for one sentence): packing would only cost time.
            return self.rnn(inputs)[0]
        if inputs.device.type == "cpu" and (split := self._split(self.rnn)) is not None:
            # A sixth faster than packing for a training step of the default BiLSTM (and
            # tested equal): packing runs the recurrence off oneDNN's kernel (see `freeze`).
            return self._forward_by_direction(inputs, mask, split)
        return self._forward_packed(inputs, mask)

    def _forward_packed(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """`forward` through the fused module on a packed batch (elsewhere than on a CPU)."""
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        states, _ = self.rnn(packed)
        states, _ = pad_packed_sequence(states, batch_first=True, total_length=inputs.shape[1])
        return states

    def freeze(self, batch_dtype: torch.dtype = torch.float32) -> None:
        """For inference: encode batches one direction at a time instead of packing them, with
        the recurrent layers in `batch_dtype` (float32 or bfloat16).

        A packed sequence makes the fused kernels project the inputs one time step at a time,
        and keeps float LSTMs off oneDNN's LSTM. Run on the padded batch as it is, a forward
        direction is exact (right padding comes after every real token) and so is a backward
        one that reads each sentence reversed within its own length. Each layer and direction
        becomes a one-layer, one-direction module of the same kind: in float32 it shares this
        encoder's weight tensors, in bfloat16 it holds a rounded copy. ATIS test at batch 256
        encodes in about 60 % of the packed time in float32, and 40 % in bfloat16 on a CPU with
        bfloat16 instructions (BENCHMARKS.md, inference). A single sentence still goes through
        the fused module in float32. Only PyTorch's own float `nn.LSTM`, `nn.GRU` and `nn.RNN`
        are split: a dynamically quantized LSTM is faster packed, and the peephole LSTM never
        packs. Training mode drops the split modules.
        """
        if batch_dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"batch_dtype: expected float32 or bfloat16, found {batch_dtype}")
        rnn = self.rnn
        if type(rnn) not in (nn.LSTM, nn.GRU, nn.RNN):
            self._directions = None
            return
        self._directions = _by_direction(rnn, batch_dtype)

    def train(self, mode: bool = True) -> RNNEncoder:
        if mode:
            self._directions = None
        return super().train(mode)

    def _forward_by_direction(
        self, inputs: Tensor, mask: Tensor, directions: list[list[nn.RNNBase]] | None = None
    ) -> Tensor:
        """`forward` of a batch through one-direction modules: `directions`, or those `freeze`
        built."""
        directions = directions or self._directions
        assert directions is not None
        return by_direction(directions, inputs, mask, self.between)

    def _forward_as_onnx(
        self, inputs: Tensor, mask: Tensor, split: list[list[nn.RNNBase]]
    ) -> Tensor:
        """`forward` while exporting: each layer becomes one ONNX node of its kind (LSTM, GRU,
        RNN), both directions in it, reading each sentence's length (`_FusedAsOnnx`)."""
        rnn = self.rnn
        lengths = mask.sum(dim=1)
        node = _onnx_node(rnn)
        x = inputs
        for layer in range(rnn.num_layers):
            if layer > 0:
                x = self.between(x)
            traced = by_direction([split[layer]], x, mask)  # what the tracer runs
            x = _FusedAsOnnx.apply(x, mask, lengths, traced, node, *_onnx_weights(rnn, layer, x))
        return x


class DirectionSplit:
    """One one-direction float32 module a layer and direction of a fused `nn.LSTM`, `nn.GRU`
    or `nn.RNN`, sharing its parameters (so training updates them through it); built on the
    first call and again if the parameters are replaced rather than updated. None for a module
    that is no such float module (a quantized one). Held in a plain attribute, so the modules
    are no submodules and add nothing to a state dict."""

    def __init__(self) -> None:
        self._split: list[list[nn.RNNBase]] | None = None
        self._split_of: tuple[int, ...] = ()

    def __call__(self, rnn: nn.Module) -> list[list[nn.RNNBase]] | None:
        if type(rnn) not in (nn.LSTM, nn.GRU, nn.RNN) or rnn.weight_ih_l0.dtype != torch.float32:
            return None
        params = tuple(id(p) for p in rnn.parameters())
        if self._split is None or params != self._split_of:
            self._split, self._split_of = _by_direction(rnn), params
        return self._split


def by_direction(
    directions: list[list[nn.RNNBase]],
    inputs: Tensor,
    mask: Tensor,
    between: nn.Module | None = None,
) -> Tensor:
    """A padded batch (B, T, E) through one-direction modules, a list per layer ([forward] or
    [forward, backward]): (B, T, directions * H), zero on padding, as a packed pass of the fused
    module gives it. `between` runs on the input of every layer after the first (the dropout of
    a stacked fused module). Exact without packing: right padding comes after every real token,
    and the backward module reads each sentence reversed within its own length."""
    lengths = mask.sum(dim=1)  # (B,)
    # (B, T, E), then (B, T, directions * H) after each layer
    x = inputs.to(directions[0][0].weight_ih_l0.dtype)
    for i, layer in enumerate(directions):
        if i > 0 and between is not None:
            x = between(x)
        states = [layer[0](x)[0]]  # (B, T, H); padding comes after every real token
        if len(layer) == 2:
            backward = layer[1](reverse_padded(x, lengths))[0]
            states.append(reverse_padded(backward, lengths))
        x = torch.cat(states, dim=2) if len(states) == 2 else states[0]
    return x.to(inputs.dtype) * mask.unsqueeze(2)  # zero on padding, as unpacking leaves it


def _by_direction(rnn: nn.RNNBase, dtype: torch.dtype = torch.float32) -> list[list[nn.RNNBase]]:
    """`_one_direction` modules of every layer of `rnn`: [forward, backward] or [forward]."""
    return [
        [
            _one_direction(rnn, layer, suffix, dtype)
            for suffix in ("", "_reverse")[: 1 + rnn.bidirectional]
        ]
        for layer in range(rnn.num_layers)
    ]


def _one_direction(
    rnn: nn.RNNBase, layer: int, suffix: str, dtype: torch.dtype = torch.float32
) -> nn.RNNBase:
    """A one-layer, one-direction module of `rnn`'s `layer` in direction `suffix` ("" or
    "_reverse"): it shares `rnn`'s weight tensors in float32, and holds copies in another
    dtype."""
    extra = {"nonlinearity": rnn.nonlinearity} if isinstance(rnn, nn.RNN) else {}
    input_size = rnn.input_size if layer == 0 else rnn.hidden_size * (1 + rnn.bidirectional)
    # Built on the meta device, so that its own initialisation draws no random numbers (a run
    # that builds it at another step than an uninterrupted one would draw other dropout);
    # every tensor is then replaced by one of `rnn`'s.
    one = type(rnn)(
        input_size, rnn.hidden_size, bias=rnn.bias, batch_first=True, device="meta", **extra
    )
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")[: 4 if rnn.bias else 2]:
        weight = getattr(rnn, f"{name}_l{layer}{suffix}")
        if weight.dtype != dtype:
            weight = nn.Parameter(weight.detach().to(dtype), requires_grad=False)
        setattr(one, f"{name}_l0", weight)
    return one.eval()


def _init_irnn(rnn: nn.RNN) -> None:
    for name, param in rnn.named_parameters():
        with torch.no_grad():
            if name.startswith("weight_hh"):
                param.copy_(torch.eye(param.shape[0]))
            elif name.startswith("weight_ih"):
                param.normal_(0.0, IRNN_INPUT_STD)
            else:
                param.zero_()


def _init_forget_bias(rnn: nn.LSTM, hidden_dim: int, forget_bias: float) -> None:
    # PyTorch orders the gates (input, forget, cell, output) and adds two biases: put the whole
    # forget bias in one of them.
    for name, param in rnn.named_parameters():
        if name.startswith("bias"):
            with torch.no_grad():
                param[hidden_dim : 2 * hidden_dim] = forget_bias if "ih" in name else 0.0


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of x (B, T, ...) within its length; padding stays in place."""
    seq_len = x.shape[1]
    steps = torch.arange(seq_len, device=x.device).unsqueeze(0)  # (1, T)
    index = torch.where(steps < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - steps, steps)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class PeepholeLSTM(nn.Module):
    """Stacked, optionally bidirectional LSTM with peephole connections.

    Kept fast without a fused kernel: the input projection of every time step is one matrix
    product, and both directions advance together in one loop over time (a batched matrix
    product over the direction axis), so a step costs a handful of tensor operations.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        num_layers: int = 1,
        bidirectional: bool = True,
        dropout: float = 0.0,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.directions = 2 if bidirectional else 1
        self.dropout = Dropout(dropout)
        self.layers = nn.ModuleList(
            PeepholeLayer(
                input_dim if i == 0 else hidden_dim * self.directions,
                hidden_dim,
                self.directions,
                forget_bias,
            )
            for i in range(num_layers)
        )

    def forward(self, inputs: Tensor, mask: Tensor) -> Tensor:
        """inputs: (B, T, E), mask: (B, T) bool -> (B, T, directions * H), zero on padding."""
        lengths = mask.sum(dim=1)
        x = inputs
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self.dropout(x)
            x = layer(x, mask, lengths)
        return x


class PeepholeLayer(nn.Module):
    """One peephole-LSTM layer with `directions` directions (1 or 2)."""

    def __init__(
        self, input_dim: int, hidden_dim: int, directions: int, forget_bias: float
    ) -> None:
        super().__init__()
        h = hidden_dim
        self.hidden_dim, self.directions = h, directions
        # Gates in the order input, forget, cell, output, as PyTorch's LSTM.
        self.weight_ih = nn.Parameter(torch.empty(directions, input_dim, 4 * h))
        self.weight_hh = nn.Parameter(torch.empty(directions, h, 4 * h))
        self.bias = nn.Parameter(torch.zeros(directions, 4 * h))
        self.peephole = nn.Parameter(torch.empty(directions, 3, h))  # input, forget, output
        bound = h**-0.5
        for p in (self.weight_ih, self.weight_hh, self.peephole):
            nn.init.uniform_(p, -bound, bound)
        with torch.no_grad():
            self.bias[:, h : 2 * h] = forget_bias

    def forward(self, x: Tensor, mask: Tensor, lengths: Tensor) -> Tensor:
        if torch.onnx.is_in_onnx_export():
            ours = (self.weight_ih, self.weight_hh, self.bias, self.peephole)
            return _PeepholeAsOnnx.apply(x, mask, lengths, *ours, *self.onnx_weights(x))
        return peephole_layer(x, mask, lengths, self.weight_ih, self.weight_hh, self.bias,
                              self.peephole)  # fmt: skip

    def onnx_weights(self, x: Tensor) -> tuple[Tensor, ...]:
        """The inputs of an ONNX `LSTM` node that computes this layer: W (D, 4H, E), R (D, 4H,
        H), B (D, 8H), initial h and c (D, B, H), zero, and P (D, 3H). ONNX orders the gates
        input, output, forget, cell (`_onnx_gate_rows`) and the peepholes input, output, forget;
        ours are input, forget, cell, output and input, forget, output."""
        h = self.hidden_dim
        gates = _onnx_gate_rows(nn.LSTM, h)
        w = self.weight_ih.transpose(1, 2)[:, gates]
        r = self.weight_hh.transpose(1, 2)[:, gates]
        b = torch.cat([self.bias[:, gates], torch.zeros_like(self.bias)], dim=1)
        start = x.new_zeros(self.directions, x.shape[0], h)
        p = self.peephole[:, [0, 2, 1]].reshape(self.directions, 3 * h)
        return w, r, b, start, start, p


def _onnx_node(rnn: nn.RNNBase) -> str:
    """The ONNX operator of a fused module, with its activation for an `nn.RNN`."""
    if isinstance(rnn, nn.RNN):
        return f"RNN:{'Relu' if rnn.nonlinearity == 'relu' else 'Tanh'}"
    return "LSTM" if isinstance(rnn, nn.LSTM) else "GRU"


def _onnx_weights(rnn: nn.RNNBase, layer: int, x: Tensor) -> tuple[Tensor, ...]:
    """The inputs of the ONNX node that computes `layer` of `rnn` on x (B, T, E): W (D, G*H, E),
    R (D, G*H, H), B (D, 2*G*H) and the zero initial h (and c) (D, B, H), gates in ONNX's order
    (`_onnx_gate_rows`)."""
    h = rnn.hidden_size
    rows = _onnx_gate_rows(type(rnn), h)
    suffixes = ("", "_reverse")[: 1 + rnn.bidirectional]

    def stacked(name: str) -> Tensor:
        return torch.stack([getattr(rnn, f"{name}_l{layer}{suffix}")[rows] for suffix in suffixes])

    bias = torch.cat([stacked("bias_ih"), stacked("bias_hh")], dim=1)
    start = x.new_zeros(len(suffixes), x.shape[0], h)
    starts = (start, start) if isinstance(rnn, nn.LSTM) else (start,)
    return stacked("weight_ih"), stacked("weight_hh"), bias, *starts


def _onnx_gate_rows(kind: type[nn.RNNBase], hidden: int) -> Tensor:
    """Row indices that put PyTorch's gate blocks of a `kind` layer's weights (each `hidden`
    rows) in ONNX's order: an LSTM's input, output, forget, cell (PyTorch: input, forget,
    cell, output), a GRU's update, reset, new (PyTorch: reset, update, new); an RNN has one."""
    order = {nn.LSTM: [0, 3, 1, 2], nn.GRU: [1, 0, 2]}.get(kind, [0])
    return torch.cat([torch.arange(k * hidden, (k + 1) * hidden) for k in order])


def _onnx_recurrent(g, node: str, x, mask, lengths, inputs: list, directions: int, hidden: int):
    """An ONNX recurrent node (`node`: LSTM, GRU, RNN:Tanh or RNN:Relu) over x (B, T, E) with
    `inputs` (W, R, B, then the initial states and peepholes after sequence_lens), reshaped to
    (B, T, D * H) and zero on padding."""
    op, _, activation = node.partition(":")
    attributes = {"hidden_size_i": hidden,
                  "direction_s": "bidirectional" if directions == 2 else "forward"}  # fmt: skip
    if op == "GRU":
        attributes["linear_before_reset_i"] = 1  # as PyTorch's GRU
    if activation:
        attributes["activations_s"] = [activation] * directions
    steps = g.op("Transpose", x, perm_i=[1, 0, 2])  # (T, B, E)
    lengths = g.op("Cast", lengths, to_i=6)  # int32, as the node reads them
    w, r, b, *rest = inputs
    outputs = g.op(op, steps, w, r, b, lengths, *rest, outputs=3 if op == "LSTM" else 2,
                   **attributes)  # fmt: skip
    states = g.op("Transpose", outputs[0], perm_i=[2, 0, 1, 3])  # (B, T, D, H)
    states = g.op("Reshape", states, g.op("Constant", value_t=torch.tensor([0, 0, -1])))
    real = g.op("Cast", g.op("Unsqueeze", mask, g.op("Constant", value_t=torch.tensor([2]))),
                to_i=1)  # fmt: skip
    return g.op("Mul", states, real)  # zero on padding, float (B, T, 1)


class _FusedAsOnnx(torch.autograd.Function):
    """A layer of a fused `nn.LSTM`, `nn.GRU` or `nn.RNN` as one ONNX node, both directions in
    it, which reads each sentence's length: no reversed copies of the batch in the graph. In
    PyTorch it hands back `traced`, the layer as `by_direction` computed it; the tracer records
    that computation too, and the export drops it, since nothing in the graph reads it."""

    @staticmethod
    def forward(ctx, x, mask, lengths, traced, node, *onnx_inputs):
        return traced.clone()

    @staticmethod
    def symbolic(g, x, mask, lengths, traced, node, w, r, b, *starts):
        directions, _, hidden = r.type().sizes()
        return _onnx_recurrent(g, node, x, mask, lengths, [w, r, b, *starts], directions, hidden)


class _PeepholeAsOnnx(torch.autograd.Function):
    """A `PeepholeLayer` as one ONNX `LSTM` node, which has peepholes and reads each
    sentence's length, so that the exported graph holds no loop unrolled to the traced length.
    In PyTorch (what the tracer runs to learn the shapes) it is `peephole_layer` of our weights;
    the node reads the same weights in ONNX's layout (`PeepholeLayer.onnx_weights`)."""

    @staticmethod
    def forward(ctx, x, mask, lengths, weight_ih, weight_hh, bias, peephole, *onnx_weights):
        return peephole_layer(x, mask, lengths, weight_ih, weight_hh, bias, peephole)

    @staticmethod
    def symbolic(g, x, mask, lengths, weight_ih, weight_hh, bias, peephole, w, r, b, h0, c0, p):
        directions, hidden = weight_hh.type().sizes()[:2]
        return _onnx_recurrent(g, "LSTM", x, mask, lengths, [w, r, b, h0, c0, p], directions,
                               hidden)  # fmt: skip


def peephole_layer(
    x: Tensor,
    mask: Tensor,
    lengths: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias: Tensor,
    peephole: Tensor,
) -> Tensor:
    """A `PeepholeLayer` with these weights: (B, T, E) -> (B, T, directions * H), zero on
    padding."""
    batch, seq_len, _ = x.shape
    directions, h = weight_hh.shape[0], weight_hh.shape[1]
    # The backward direction reads each sentence reversed within its own length.
    streams = [x] if directions == 1 else [x, reverse_padded(x, lengths)]
    stacked = torch.stack(streams)  # (D, B, T, E)
    # One input projection for all steps: (D, B, T, 4H).
    projected = torch.einsum("dbte,deg->dbtg", stacked, weight_ih) + bias[:, None, None]
    hidden = x.new_zeros(directions, batch, h)
    cell = x.new_zeros(directions, batch, h)
    p_in, p_forget, p_out = peephole.unbind(dim=1)  # each (D, H)
    p_in, p_forget, p_out = p_in[:, None], p_forget[:, None], p_out[:, None]
    outputs = []
    for t in range(seq_len):
        gates = torch.baddbmm(projected[:, :, t], hidden, weight_hh)  # (D, B, 4H)
        i, f, g, o = gates.split(h, dim=2)
        i = torch.sigmoid(i + p_in * cell)
        f = torch.sigmoid(f + p_forget * cell)
        new_cell = f * cell + i * torch.tanh(g)
        o = torch.sigmoid(o + p_out * new_cell)
        new_hidden = o * torch.tanh(new_cell)
        keep = mask[:, t].view(1, batch, 1)  # padding leaves the state as it was
        cell = torch.where(keep, new_cell, cell)
        hidden = torch.where(keep, new_hidden, hidden)
        outputs.append(new_hidden * keep)
    states = torch.stack(outputs, dim=2)  # (D, B, T, H)
    if directions == 1:
        return states[0]
    return torch.cat([states[0], reverse_padded(states[1], lengths)], dim=2)
