"""Where a training epoch's time goes: one epoch of a config in a plain loop, by component.

    python bench/train_step.py                                  # the ATIS default
    python bench/train_step.py --set model.crf_likelihood=pytorch-crf

Builds the data and model as `nlu train` does, collates every training batch first (so data
loading is left out), runs one warm-up epoch, then times a second: forward, loss, backward,
gradient clipping and the optimiser step, summed over its batches; then one dev pass (forward
and decode). No Lightning: what is left of `nlu train`'s epoch time is the trainer's own.
"""

from __future__ import annotations

import argparse
import time

import torch

from nlu.config import load_config
from nlu.model import build_model
from nlu.training.datamodule import NLUDataModule
from nlu.training.module import adamw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/atis_bilstm_crf.yaml")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    torch.manual_seed(cfg.train.seed)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    data = NLUDataModule(cfg.data, batch_size=cfg.train.batch_size, seed=cfg.train.seed)
    data.setup("fit")
    model = build_model(cfg.model, data.vocabs)
    optimizer = adamw(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    batches = list(data.train_dataloader())
    print(
        f"cpu capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} threads, {len(batches)} batches"
    )
    for run in ("warm-up", "timed"):
        parts = dict.fromkeys(("forward", "loss", "backward", "clip", "optimizer"), 0.0)
        model.train()
        started = time.perf_counter()
        for batch in batches:
            t0 = time.perf_counter()
            output = model.forward_batch(batch)
            t1 = time.perf_counter()
            loss = model.loss(output, batch.tag_ids, batch.intent_ids).total
            t2 = time.perf_counter()
            optimizer.zero_grad()
            loss.backward()
            t3 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.gradient_clip)
            t4 = time.perf_counter()
            optimizer.step()
            t5 = time.perf_counter()
            for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                parts[name] += seconds
        total = time.perf_counter() - started
        shown = "  ".join(f"{name} {seconds:.2f}" for name, seconds in parts.items())
        print(f"{run} epoch {total:.2f} s: {shown}")
    model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        for batch in data.val_dataloader():
            model.decode(model.forward_batch(batch))
    print(f"dev pass {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
