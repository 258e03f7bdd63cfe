"""Which examples a DataConfig names: `name` folders, `train`/`dev`/`test` files in any format,
and the seeded, stratified dev split when no dev data is given."""

import json
import shutil
from collections import Counter

import pytest

from nlu.config import DataConfig, load_config
from nlu.data.splits import load_splits, split_paths, stratified_split
from nlu.schema import Example
from tests.conftest import FIXTURES, TINY


def examples(counts: dict[str, int]) -> list[Example]:
    return [
        Example((f"{intent}{i}",), ("O",), intent, source=f"f:{intent}{i}")
        for intent, n in counts.items()
        for i in range(n)
    ]


def test_stratified_split_takes_each_intents_share():
    data = examples({"a": 50, "b": 30, "c": 20, "d": 1})
    train, dev = stratified_split(data, 0.1, seed=1)
    assert Counter(e.intent for e in dev) == {"a": 5, "b": 3, "c": 2}  # "d" keeps its only one
    assert len(train) + len(dev) == len(data) and not set(train) & set(dev)
    assert train == [e for e in data if e in set(train)]  # original order kept


def test_stratified_split_is_seeded():
    data = examples({"a": 40, "b": 40})
    assert stratified_split(data, 0.2, seed=1) == stratified_split(data, 0.2, seed=1)
    assert stratified_split(data, 0.2, seed=1)[1] != stratified_split(data, 0.2, seed=2)[1]


def test_stratified_split_of_tiny_data_still_gives_a_dev_example():
    train, dev = stratified_split(examples({"a": 3, "b": 3}), 0.1, seed=1)
    assert len(dev) == 1 and len(train) == 5
    with pytest.raises(ValueError, match="expected a number between 0 and 1, found 1.5"):
        stratified_split(examples({"a": 3}), 1.5, seed=1)


def test_train_file_without_dev_is_split_and_recorded():
    cfg = load_config(None, [f"data.train={FIXTURES / 'snips_dataset.json'}"])
    splits = load_splits(cfg.data)
    assert len(splits.train) + len(splits.dev) == 17 and splits.test is None
    assert splits.dev_split == {
        "from": "train",
        "fraction": 0.1,
        "seed": 1,
        "stratified_by": "intent",
        "train_examples": 15,
        "dev_examples": 2,
    }


def test_train_dev_test_files_in_any_format(tmp_path):
    dev = tmp_path / "dev.txt"
    dev.write_text("# intent = greet\nhello O\n")  # CoNLL in a .txt: detected from content
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "hi there", "intent": "greet"}) + "\n")
    cfg = DataConfig(train=str(FIXTURES / "snips_dataset.json"), dev=str(dev), test=str(test))
    splits = load_splits(cfg)
    assert len(splits.train) == 17 and splits.dev_split is None
    assert splits.dev[0].tokens == ("hello",) and splits.test[0].text == "hi there"


def test_forced_format_applies_to_every_split(tmp_path):
    train = tmp_path / "train.data"
    train.write_text(json.dumps({"tokens": ["hi"], "tags": ["O"], "intent": "greet"}) + "\n")
    splits = load_splits(DataConfig(train=str(train), dev=str(train), format="jsonl"))
    assert splits.train == splits.dev == [Example(("hi",), ("O",), "greet")]
    with pytest.raises(ValueError, match=r"train\.data:1: expected a BIO tag .*found '\"greet\"}'"):
        load_splits(DataConfig(train=str(train), format="conll"))


def test_name_folders_as_before_and_a_missing_dev_folder_is_split(tmp_path):
    splits = load_splits(DataConfig(name=str(TINY)))
    assert (len(splits.train), len(splits.dev), len(splits.test)) == (20, 4, 4)
    assert splits.dev_split is None
    shutil.copytree(TINY / "train", tmp_path / "train")
    splits = load_splits(DataConfig(name=str(tmp_path)))
    assert (len(splits.train), len(splits.dev), splits.test) == (18, 2, None)
    assert splits.dev_split["dev_examples"] == 2


def test_dev_without_train_is_an_error():
    with pytest.raises(ValueError, match="expected data.train to be set, found only data.name"):
        load_splits(DataConfig(dev="dev.jsonl"))


def test_new_fields_have_defaults_and_validate():
    cfg = load_config(None, ["data.format=rasa", "data.hf.tags=ner_tags", "data.dev_fraction=0.2"])
    assert cfg.data.format == "rasa" and cfg.data.hf.tags == "ner_tags"
    assert cfg.data.train == "" and cfg.data.hf.intent == "intent" and cfg.data.split_seed == 1
    with pytest.raises(ValueError, match=r"data\.format: expected one of 'auto', 'seqio'"):
        load_config(None, ["data.format=xml"])


def test_split_paths_expands_dataset_folders(tmp_path, monkeypatch):
    assert split_paths(TINY) == [TINY / "train", TINY / "valid", TINY / "test"]
    assert split_paths(TINY / "train") == [TINY / "train"]
    monkeypatch.setenv("NLU_DATA_DIR", str(FIXTURES))
    assert split_paths("tiny") == [TINY / "train", TINY / "valid", TINY / "test"]


def test_datamodule_reads_a_rasa_file(recwarn):
    from nlu.training.datamodule import NLUDataModule

    data = NLUDataModule(DataConfig(train=str(FIXTURES / "rasa_nlu.yml")), batch_size=4)
    data.setup("fit")
    assert set(data.data) == {"train", "valid"}
    assert len(data.data["train"]) + len(data.data["valid"]) == 18
    assert "paris" in data.vocabs.words and "B-party_size" in data.vocabs.tags
    assert data.splits.dev_split["dev_examples"] == 2
    assert "synonym 'NYC' skipped" in str(recwarn.pop().message)
