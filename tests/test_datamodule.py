import datasets
import torch

from nlu.config import DataConfig
from nlu.features import IGNORE_INTENT
from nlu.training.datamodule import NLUDataModule


def test_dataset_dict_and_vocabularies_from_train_only(tiny_dir):
    data = NLUDataModule(DataConfig(name=str(tiny_dir)), batch_size=4)
    data.setup("fit")
    assert isinstance(data.data, datasets.DatasetDict)
    assert set(data.data) == {"train", "valid"} and len(data.data["train"]) == 20
    assert {"tokens", "tags", "intent", "word_ids", "char_ids", "tag_ids", "intent_id"} <= set(
        data.data["train"].column_names
    )
    # "taxi" occurs in train; "limousine" only in valid, so it must be UNK.
    assert "taxi" in data.vocabs.words and "limousine" not in data.vocabs.words
    valid = data.data["valid"]
    assert valid[2]["tokens"][0] == "limousine" and valid[2]["word_ids"][0] == 1  # UNK
    assert all(intent != IGNORE_INTENT for intent in valid["intent_id"])


def test_batches_carry_ids_and_gold_strings(tiny_dir):
    data = NLUDataModule(DataConfig(name=str(tiny_dir)), batch_size=4)
    data.setup("fit")
    batches = list(data.train_dataloader())
    assert sum(b.word_ids.shape[0] for b in batches) == 20
    batch = batches[0]
    assert batch.mask.dtype == torch.bool and batch.mask[:, 0].all()
    assert (
        batch.tag_ids.shape == batch.word_ids.shape
        and len(batch.gold_tags) == batch.word_ids.shape[0]
    )


def test_word_counts_are_training_counts_by_id(tiny_dir):
    data = NLUDataModule(DataConfig(name=str(tiny_dir)), batch_size=4)
    data.setup("fit")
    counts = data.word_counts()
    train = data.examples["train"]
    tokens = [t.lower() for e in train for t in e.tokens]
    assert len(counts) == len(data.vocabs.words)
    assert counts[0] == counts[1] == 0  # PAD, UNK
    assert sum(counts) == len(tokens)
    assert counts[data.vocabs.words.index("taxi")] == tokens.count("taxi") > 0
