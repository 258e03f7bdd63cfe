"""End to end from users' formats: a Rasa YAML file and a snips-nlu dataset each train a tiny
model that tags its own training sentences correctly (text in, spans out)."""

import json

import pytest

from nlu.data.readers import DataWarning
from tests.conftest import FIXTURES, TINY_OVERRIDES

# The tiny model of the other end-to-end tests, for fewer epochs: these sets are smaller.
TRAIN_OVERRIDES = [
    *(o for o in TINY_OVERRIDES if not o.startswith("data.name=")),
    "train.max_epochs=20",
    "train.lr=0.02",
]


def train_on(path, runs, *extra):
    from nlu.config import load_config
    from nlu.training.train import train

    cfg = load_config(
        None, [*TRAIN_OVERRIDES, f"data.train={path}", f"runs_dir={runs}", "name=own", *extra]
    )
    return train(cfg)


def assert_tags_its_training_sentences(result, examples):
    from nlu.parser import Parser

    held_out = set((result.run_dir / "dev_split.txt").read_text().split())
    trained_on = [e for e in examples if e.source not in held_out]
    assert len(trained_on) == len(examples) - len(held_out) > 0
    parser = Parser.load(result.model_dir)
    for e in trained_on:
        parse = parser.parse(e.text)
        assert parse.intent == e.intent, e
        found = [(x.entity, x.start, x.end) for x in parse.entities]
        assert found == [(s.label, s.start, s.end) for s in e.entities], (e, found)


@pytest.mark.slow
# The synonym note is checked here:
@pytest.mark.filterwarnings("ignore::nlu.data.readers.DataWarning")
def test_rasa_yaml_trains_end_to_end(tmp_path):
    from nlu.data.formats import read_examples

    path = FIXTURES / "rasa_nlu.yml"
    with pytest.warns(DataWarning, match=r"rasa_nlu\.yml:28: synonym 'NYC' skipped"):
        examples = read_examples(path)
    result = train_on(path, tmp_path)
    # No dev data given: a stratified split of train was held out, and the run says so.
    info = json.loads((result.run_dir / "metrics.json").read_text())
    assert info["dev_split"]["dev_examples"] == 2 and info["dev_split"]["seed"] == 1
    assert info["data"] == str(path)
    assert_tags_its_training_sentences(result, examples)


@pytest.mark.slow
def test_snips_dataset_trains_end_to_end(tmp_path):
    from nlu.data.formats import read_examples

    path = FIXTURES / "snips_dataset.json"
    result = train_on(path, tmp_path, "data.dev_fraction=0.15", "data.split_seed=3")
    assert "test" not in result.reports
    assert_tags_its_training_sentences(result, read_examples(path))
