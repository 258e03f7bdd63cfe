"""Hugging Face datasets from local files, through the column mapping (no network here)."""

import json
import subprocess
import sys

import datasets
import pytest

from nlu.config import DataConfig, HFConfig
from nlu.data.formats import read_examples
from nlu.data.hf import read_hf, split_source
from nlu.data.splits import load_splits


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_token_columns_are_mapped(tmp_path):
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {"words": ["fly", "to", "rome"], "labels": ["O", "O", "B-city"], "label": "flight"},
            {"words": ["hi"], "labels": ["O"], "label": "greet"},
        ],
    )
    columns = HFConfig(tokens="words", tags="labels", intent="label")
    first, second = read_hf(str(path), columns)
    assert first.tokens == ("fly", "to", "rome") and first.tags == ("O", "O", "B-city")
    assert second.intent == "greet" and second.source == f"{path}:2"


def test_class_label_ids_become_names(tmp_path):
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner": datasets.Sequence(datasets.ClassLabel(names=["O", "B-city", "I-city"])),
            "intent": datasets.ClassLabel(names=["flight", "greet"]),
        }
    )
    rows = {"tokens": [["to", "new", "york"], ["hi"]], "ner": [[0, 1, 2], [0]], "intent": [0, 1]}
    datasets.Dataset.from_dict(rows, features=features).to_parquet(tmp_path / "d.parquet")
    cfg = DataConfig(train=str(tmp_path / "d.parquet"), hf=HFConfig(tags="ner"))  # auto: hf
    splits = load_splits(cfg)
    everything = splits.train + splits.dev
    assert sorted(e.intent for e in everything) == ["flight", "greet"]
    assert next(e for e in everything if e.intent == "flight").tags == ("O", "B-city", "I-city")


def test_text_and_entities_columns_and_a_named_split(tmp_path):
    rows = [
        {"text": "Fly to Rome", "intent": "flight", "entities": [
            {"start": 7, "end": 11, "entity": "city"}]},
        {"text": "hi", "intent": "greet", "entities": []},
    ]  # fmt: skip
    datasets.Dataset.from_list(rows).save_to_disk(tmp_path / "saved")
    examples = read_examples(f"{tmp_path / 'saved'}", "hf")
    assert examples[0].tags == ("O", "O", "B-city") and examples[0].text == "Fly to Rome"
    assert examples[0].source == f"{tmp_path / 'saved'} row 0"
    write_jsonl(tmp_path / "t.jsonl", rows)
    assert read_examples(f"{tmp_path / 't.jsonl'}:train", "hf") == examples
    with pytest.raises(ValueError, match=r"t\.jsonl:test: expected a Hugging Face dataset .*split"):
        read_examples(f"{tmp_path / 't.jsonl'}:test", "hf")


def test_missing_columns_say_which_and_what_there_is(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"sentence": "hi", "label": "greet"}])
    with pytest.raises(
        ValueError,
        match=r"expected an intent column 'intent' \(data\.hf\.intent\), found columns "
        r"\['sentence', 'label'\]",
    ):
        read_hf(str(path))
    with pytest.raises(ValueError, match=r"expected a column 'tokens' .* or 'text'"):
        read_hf(str(path), HFConfig(intent="label"))
    path = write_jsonl(tmp_path / "t.jsonl", [{"tokens": ["hi"], "intent": "greet"}])
    with pytest.raises(ValueError, match=r"expected a tags column 'tags' \(data\.hf\.tags\)"):
        read_hf(str(path))


def test_split_source():
    assert split_source("user/atis") == ("user/atis", "train")
    assert split_source("user/atis:validation") == ("user/atis", "validation")
    assert split_source("user/atis:train[:10%]") == ("user/atis", "train[:10%]")


def test_other_formats_never_import_datasets():
    code = (
        "import sys\nfrom nlu.data.formats import read_examples\nfrom nlu.data import splits\n"
        "read_examples('tests/fixtures/snips_dataset.json')\n"
        "print('datasets' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
