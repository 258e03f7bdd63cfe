"""Lightning data module: read the splits, build vocabularies from train, featurize, batch."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from nlu.config import DataConfig
from nlu.data.splits import Splits, load_splits
from nlu.features import Batch, Features, collate, featurize
from nlu.schema import Example
from nlu.tokenizer import Tokenizer
from nlu.training.sampler import BucketBatchSampler
from nlu.vocab import PAD_ID, UNK_ID, Vocabs, build_vocabs

FEATURE_COLUMNS = ("word_ids", "char_ids", "tag_ids", "intent_id")


def to_dataset_dict(splits: dict[str, Sequence[Example]]) -> datasets.DatasetDict:
    """Examples of each split as a Hugging Face `DatasetDict` with tokens, tags and intent."""
    return datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict(
                {
                    "tokens": [list(e.tokens) for e in examples],
                    "tags": [list(e.tags) for e in examples],
                    "intent": [e.intent for e in examples],
                }
            )
            for name, examples in splits.items()
        }
    )


def _collate_rows(rows: list[dict]) -> Batch:
    batch = collate([Features(**{k: row[k] for k in FEATURE_COLUMNS}) for row in rows])
    batch.gold_tags = [row["tags"] for row in rows]
    batch.gold_intents = [row["intent"] for row in rows]
    return batch


class NLUDataModule(pl.LightningDataModule):
    """Train and dev splits of one dataset, featurized through `nlu.features.featurize`."""

    def __init__(
        self, cfg: DataConfig, batch_size: int = 32, seed: int = 0, vocabs: Vocabs | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.seed = seed
        self.tokenizer = Tokenizer(cfg.lowercase, cfg.normalize_digits)
        self.vocabs = vocabs
        self.examples: dict[str, list[Example]] = {}
        self.splits: Splits | None = None
        self.data: datasets.DatasetDict | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.data is not None:
            return
        # Test is read here too, so bad data anywhere fails before training starts.
        self.splits = load_splits(self.cfg)
        self.examples[self.cfg.train_split] = self.splits.train
        self.examples[self.cfg.dev_split] = self.splits.dev
        train = self.examples[self.cfg.train_split]
        if self.vocabs is None:
            self.vocabs = build_vocabs(
                [self.tokenizer.normalize_all(e.tokens) for e in train],
                [e.tags for e in train],
                [e.intent for e in train],
                min_word_count=self.cfg.min_word_count,
            )
        raw = to_dataset_dict(self.examples)
        datasets.disable_progress_bars()  # Lightning's bar is the one to watch
        # In memory and never cached, so the fingerprint need not hash the featurizer, which
        # would pickle the vocabularies with it (3 s of a run on ATIS).
        self.data = datasets.DatasetDict(
            {
                name: split.map(
                    self._featurize, load_from_cache_file=False, new_fingerprint=f"nlu-{name}"
                )
                for name, split in raw.items()
            }
        )

    def _featurize(self, row: dict) -> dict:
        f = featurize(row["tokens"], self.vocabs, self.tokenizer, row["tags"], row["intent"])
        return {
            "word_ids": f.word_ids,
            "char_ids": f.char_ids,
            "tag_ids": f.tag_ids,
            "intent_id": f.intent_id,
        }

    def transfer_batch_to_device(self, batch: Batch, device: torch.device, dataloader_idx: int):
        # Lightning's default walks every field recursively, each gold tag string included:
        # a seventh of a CPU epoch on ATIS. Only the tensors need to move.
        return batch.to(device)

    def word_counts(self) -> list[int]:
        """How often each word id occurs in the training split (0 for the specials), counted
        on the featurized ids."""
        ids = [i for row in self.data[self.cfg.train_split]["word_ids"] for i in row]
        counts = torch.bincount(torch.tensor(ids), minlength=len(self.vocabs.words)).tolist()
        for special in (PAD_ID, UNK_ID):
            counts[special] = 0
        return counts

    @property
    def dev_examples(self) -> list[Example]:
        return self.examples[self.cfg.dev_split]

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        lengths = [len(e.tokens) for e in self.examples[split]]
        # Training batches are shuffled and shared among DDP processes. Every process scores
        # the whole dev split, in the batches one process would use: the same weights give
        # every process the scores, the best epoch and the early stop that one process would.
        sampler = BucketBatchSampler(
            lengths, batch_size, shuffle=shuffle, seed=self.seed, shard=shuffle
        )
        return DataLoader(self.data[split], batch_sampler=sampler, collate_fn=_collate_rows)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.cfg.train_split, self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.cfg.dev_split, 256, shuffle=False)
