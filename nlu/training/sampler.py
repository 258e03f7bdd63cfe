"""Length-bucketed batches: sentences of similar length share a batch, so little padding.

The CRF's cost grows with the longest sentence of a batch; on ATIS, random batches of 32 pad to
twice the mean length and an epoch runs several times slower than with bucketing.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch.distributed as dist
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Shuffled batches of indices of similar length; reshuffled every epoch.

    Shuffle, cut into pools of `pool_batches` batches, sort each pool by length, cut it into
    batches and shuffle the batches. Under DDP with `shard` (training), each process takes
    every `world_size`-th batch of that one list, so a batch goes to exactly one process, and
    the last `len % world_size` batches of the epoch are left out so that every process runs as
    many steps (DDP's gradient exchange would wait for a process that has finished); which ones
    changes with the shuffle. Without `shard` (evaluation), every process gets every batch.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        shard: bool = True,
    ) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.pool_batches = pool_batches
        self.shard = shard
        self.epoch = 0
        # Lightning hands each epoch's number to `batch_sampler.sampler.set_epoch`, never to a
        # batch sampler's own; this one draws its own order, so it is its own `sampler`.
        self.sampler = self
        distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if distributed else 0
        self.world_size = dist.get_world_size() if distributed else 1

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls it (through `self.sampler`) before each epoch: a new shuffle."""
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        pool = self.batch_size * self.pool_batches
        batches = []
        for lo in range(0, len(order), pool):
            chunk = sorted(order[lo : lo + pool], key=self.lengths.__getitem__)
            batches.extend(
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            )
        if self.shuffle:
            rng.shuffle(batches)
        if not self.shard or self.world_size == 1:
            return batches
        usable = len(batches) - len(batches) % self.world_size
        return batches[self.rank : usable : self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
