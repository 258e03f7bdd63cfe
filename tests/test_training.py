"""End-to-end: train a tiny model on the fixture and check what users get from it."""

import pytest

from nlu.data.seqio import read_seqio
from nlu.eval.evaluate import evaluate
from tests.conftest import TINY, TINY_OVERRIDES, assert_same_parses


def test_overfits_its_own_training_data(trained, parser, tiny_dir):
    train = read_seqio(tiny_dir / "train")
    report = evaluate(parser, train)
    assert report.sentence_accuracy == 100.0, report.summary()
    assert trained.reports["dev"].num_examples == 4 and "test" in trained.reports


def test_metrics_json_has_the_scores_of_the_model_as_served(trained):
    """Scored as trained (torch, float32) and as `nlu.load` serves it with no options."""
    import json

    from nlu.parser import Parser

    metrics = json.loads((trained.run_dir / "metrics.json").read_text())
    served = Parser.load(trained.model_dir)
    assert served.backend == "onnx"
    assert metrics["served"]["backend"] == "onnx"
    assert metrics["served"]["precision"] == served.precision
    assert set(metrics["served"]["metrics"]) == {"dev", "test"}
    test = evaluate(served, read_seqio(TINY / "test")).summary()
    assert metrics["served"]["metrics"]["test"]["slot_f1"] == pytest.approx(test["slot_f1"])


def test_parse_gives_spans_of_the_text_as_typed(parser):
    parse = parser.parse("Show me flights from Boston to London on Friday?")
    assert parse.intent == "flight"
    found = {(e.entity, e.value) for e in parse.entities}
    assert ("toloc.city_name", "London") in found and ("fromloc.city_name", "Boston") in found
    for e in parse.to_dict()["entities"]:
        assert parse.text[e["start"] : e["end"]] == e["value"]
        assert 0.0 < e["confidence_entity"] <= 1.0 and e["extractor"] == "nlu"
    ranking = parse.to_dict()["intent_ranking"]
    assert ranking[0]["name"] == parse.intent
    assert sum(r["confidence"] for r in ranking) <= 1.0 + 1e-6


def test_batched_equals_one_at_a_time(parser):
    texts = ["taxi in dallas", "", "cheapest fare from london to new york on monday please", "hi!"]
    one_by_one = [parser.parse(t).to_dict() for t in texts]
    assert_same_parses([p.to_dict() for p in parser.parse_batch(texts, batch_size=3)], one_by_one)


def test_unseen_labels_in_test_count_as_errors(trained):
    # The fixture's test split has the intent "distance" and the tag "B-toloc.country_name",
    # neither of which is in train.
    assert trained.reports["test"].intent_accuracy < 100.0


def test_intent_parts_learn_the_two_intent_label(tmp_path, tiny_dir):
    """The tiny set has one "flight#airfare" question; scored from the parts flight and airfare,
    the model still has to give that exact label back."""
    from nlu.config import load_config
    from nlu.parser import Parser
    from nlu.training.train import train

    cfg = load_config(
        None, [*TINY_OVERRIDES, f"runs_dir={tmp_path}", "name=parts", "model.intent_parts=true"]
    )
    result = train(cfg)
    parser = Parser.load(result.model_dir)
    assert parser.parse("fare and flights from denver to boston").intent == "flight#airfare"
    assert parser.parse("flights from denver to boston").intent == "flight"
    ranking = parser.parse("fares from boston to denver").intent_ranking
    assert abs(sum(c for _, c in ranking) - 1.0) < 1e-4


def test_training_leaves_warning_filters_and_logger_levels_as_it_found_them(tmp_path):
    """Lightning is hushed for the fit alone: a library call does not change the caller's
    warning filters or logger levels for the rest of the process."""
    import logging
    import warnings

    from nlu.config import load_config
    from nlu.training.train import train

    names = ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")
    filters = list(warnings.filters)
    levels = [logging.getLogger(name).level for name in names]
    train(load_config(None, [*TINY_OVERRIDES, "train.max_epochs=1", f"runs_dir={tmp_path}"]))
    assert warnings.filters == filters
    assert [logging.getLogger(name).level for name in names] == levels


def test_without_a_terminal_each_epoch_is_one_line_of_the_log(tmp_path, capsys):
    """Under pytest stdout is no terminal: no progress bar, one line an epoch on stderr, with
    the numbers of that epoch's row in logs/metrics.csv."""
    import csv

    from nlu.config import load_config
    from nlu.training.train import train

    cfg = load_config(None, [*TINY_OVERRIDES, "train.max_epochs=3", "train.progress_bar=true",
                             f"runs_dir={tmp_path}"])  # fmt: skip
    result = train(cfg)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    with (result.run_dir / "logs" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3  # one row an epoch: its training means beside its dev scores
    for line, row in zip(lines, rows):
        assert f"train loss {float(row['train_loss_epoch']):.4f}" in line
        assert f"dev slot F1 {float(row['val_slot_f1']):.2f}" in line
        assert f"sentence {float(row['val_sentence_accuracy']):.2f}" in line
    assert f"best: epoch {result.best_epoch + 1} (sentence_accuracy " in lines[-1]


NEW_PARTS = {
    "token": ["model.intent_level=token", "model.token_intent_vote=vote",
              "model.slot_intent_dim=4", "model.attention_branch_dim=8"],
    "labels": ["data.normalize_digits=true", "model.word_shape_dim=4", "model.interaction_dim=8",
               "model.label_attention=true", "model.slot_intent_dim=3"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(NEW_PARTS))
def test_new_model_parts_train_save_load_batch_and_quantize(tmp_path, name):
    """New model parts go every way a model goes: training, save -> load, parse_batch against
    one at a time, and int8."""
    from nlu import archive
    from nlu.config import load_config
    from nlu.parser import Parser
    from nlu.training.train import train

    cfg = load_config(None, [*TINY_OVERRIDES, f"runs_dir={tmp_path}", f"name={name}",
                             *NEW_PARTS[name]])  # fmt: skip
    result = train(cfg)
    parser = Parser.load(result.model_dir, backend="torch")
    if name == "token":
        assert parser.config.model.intent_level == "token" and parser.model.branch is not None
    else:
        assert parser.model.interaction is not None and parser.model.label_attention is not None
        assert parser.model.embedding.word_shape is not None
        assert parser.tokenizer.normalize("1215") == "0000"
    texts = ["show me flights from boston to london on friday", "taxi in dallas", "", "fares"]
    parses = [p.to_dict() for p in parser.parse_batch(texts, batch_size=3)]
    assert_same_parses(parses, [parser.parse(t).to_dict() for t in texts])
    copy = archive.save(tmp_path / "copy", parser.config, parser.vocabs, parser.model, parser.info)
    assert [p.to_dict() for p in Parser.load(copy).parse_batch(texts)] == [
        p.to_dict() for p in parser.parse_batch(texts)
    ]
    int8 = Parser.load(result.model_dir, precision="int8")
    assert [p.intent for p in int8.parse_batch(texts)] == [p["intent"]["name"] for p in parses]
    # Training wrote the graph: ONNX by default.
    exported = Parser.load(result.model_dir, precision="float32")
    assert exported.backend == "onnx"
    assert_same_parses([p.to_dict() for p in exported.parse_batch(texts)], parses)
