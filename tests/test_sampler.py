import random

from nlu.training.sampler import BucketBatchSampler


def test_every_index_once_in_batches_of_similar_length():
    rng = random.Random(0)
    lengths = [rng.randint(1, 40) for _ in range(1000)]
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert all(len(b) <= 32 for b in batches) and len(batches) == len(sampler)
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert sum(spread) / len(spread) <= 2  # random batches would spread over ~35


def test_epochs_reshuffle_and_seeds_repeat():
    lengths = list(range(200))
    sampler = BucketBatchSampler(lengths, batch_size=10, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first == list(BucketBatchSampler(lengths, batch_size=10, seed=1))


def test_processes_get_disjoint_equal_shares():
    lengths = [5] * 105
    shares = []
    for rank in range(2):
        sampler = BucketBatchSampler(lengths, batch_size=10, seed=0)
        sampler.rank, sampler.world_size = rank, 2
        shares.append(list(sampler))
    assert len(list(BucketBatchSampler(lengths, 10))) == 11
    # 5 batches each: the 11th cannot be split evenly, and DDP needs equal step counts.
    assert len(shares[0]) == len(shares[1]) == 5
    assert not {i for b in shares[0] for i in b} & {i for b in shares[1] for i in b}


def test_unshuffled_keeps_every_index():
    sampler = BucketBatchSampler([3, 1, 2], batch_size=2, shuffle=False)
    assert sorted(i for b in sampler for i in b) == [0, 1, 2]


def test_evaluation_batches_are_every_process_s_own():
    """Without `shard`, every process gets the batches one process would."""
    lengths = [random.Random(1).randint(1, 20) for _ in range(105)]
    alone = list(BucketBatchSampler(lengths, batch_size=10, shuffle=False, shard=False))
    for rank in range(2):
        sampler = BucketBatchSampler(lengths, batch_size=10, shuffle=False, shard=False)
        sampler.rank, sampler.world_size = rank, 2
        assert list(sampler) == alone


def test_lightning_gives_every_training_epoch_its_own_shuffle():
    # Lightning sets the epoch only through `batch_sampler.sampler`: without it, every epoch
    # would run the batches of epoch 0 in the same order.
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader

    seen: list[list[int]] = []

    class Record(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))

        def training_step(self, batch, batch_idx):
            if batch_idx == 0:
                seen.append(batch.tolist())
            return (self.weight - batch.float().mean()) ** 2

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    sampler = BucketBatchSampler(list(range(100)), batch_size=10, seed=1)
    loader = DataLoader(torch.arange(100), batch_sampler=sampler)
    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(Record(), loader)
    assert len(seen) == 3 and len({tuple(b) for b in seen}) == 3
    again = BucketBatchSampler(list(range(100)), batch_size=10, seed=1)
    again.set_epoch(2)
    assert seen[2] == next(iter(again))
