"""Training speed of our peephole LSTM against PyTorch's fused nn.LSTM of the same size.

    .venv/bin/python bench/peephole_speed.py

Times forward + backward on ATIS-like batches (32 sentences, lengths 5-20, 130 inputs, 200
hidden units per direction, bidirectional), both encoders in the same run, alternating.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from nlu.modules.encoder import RNNEncoder


def step_seconds(encoder: RNNEncoder, inputs: torch.Tensor, mask: torch.Tensor) -> float:
    started = time.perf_counter()
    encoder(inputs, mask).sum().backward()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=200)
    args = parser.parse_args()
    torch.manual_seed(0)
    encoders = {
        kind: RNNEncoder(130, args.hidden, kind=kind, bidirectional=True)
        for kind in ("lstm", "peephole_lstm")
    }
    times: dict[str, list[float]] = {kind: [] for kind in encoders}
    for k in range(args.batches):
        length = 5 + k % 16
        lengths = torch.randint(max(1, length - 3), length + 1, (32,))
        lengths[0] = length
        inputs = torch.randn(32, length, 130)
        mask = torch.arange(length)[None, :] < lengths[:, None]
        for kind, encoder in encoders.items():
            times[kind].append(step_seconds(encoder, inputs, mask))
    lstm = statistics.mean(times["lstm"][5:])
    peephole = statistics.mean(times["peephole_lstm"][5:])
    print(f"threads {torch.get_num_threads()}, hidden {args.hidden}, bidirectional, batch 32")
    print(f"nn.LSTM          {1000 * lstm:7.2f} ms per forward+backward")
    print(f"peephole_lstm    {1000 * peephole:7.2f} ms per forward+backward")
    print(f"ratio            {peephole / lstm:7.2f} x nn.LSTM's time")


if __name__ == "__main__":
    main()
