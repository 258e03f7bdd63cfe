"""Temperature scaling of intent confidences: the fit, and what it does to a trained Parser."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from nlu import archive
from nlu.config import FORMAT_VERSION
from nlu.data.seqio import read_seqio
from nlu.eval.calibration import MAX_INVERSE, calibrate_intents, fit_temperature
from nlu.features import IGNORE_INTENT
from nlu.model import build_model
from nlu.parser import Parser


def overconfident(temperature: float, n: int = 20000, classes: int = 6, seed: int = 0):
    """Labels drawn from softmax(z), reported as logits z * temperature."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=generator) * 2
    labels = torch.multinomial(z.softmax(dim=1), 1, generator=generator).squeeze(1)
    return z * temperature, labels


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
def test_fit_recovers_the_temperature_that_generated_the_labels(temperature):
    logits, labels = overconfident(temperature)
    assert fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.05)


def test_the_fit_minimises_the_negative_log_likelihood():
    logits, labels = overconfident(2.0, n=3000, seed=1)
    fitted = fit_temperature(logits, labels)

    def nll(t):
        return float(torch.nn.functional.cross_entropy(logits / t, labels))

    assert nll(fitted) <= min(nll(fitted * 0.97), nll(fitted * 1.03))


def test_unseen_intents_are_left_out_and_nothing_to_fit_gives_one():
    logits, labels = overconfident(2.0, n=4000, seed=2)
    noisy = labels.clone()
    noisy[:1000] = IGNORE_INTENT
    assert fit_temperature(logits, noisy) == pytest.approx(
        fit_temperature(logits[1000:], labels[1000:])
    )
    assert fit_temperature(logits[:3], torch.full((3,), IGNORE_INTENT)) == 1.0


def test_separable_data_takes_the_end_of_the_range():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    assert fit_temperature(logits, torch.tensor([0, 1])) == pytest.approx(1 / MAX_INVERSE)


def test_training_fits_and_exports_the_temperature(trained, parser):
    info = json.loads((trained.model_dir / "info.json").read_text())
    assert info["intent_temperature"] > 0
    assert float(parser.model.intent_head.temperature) == pytest.approx(
        info["intent_temperature"], rel=1e-3
    )


def test_calibration_changes_confidences_never_answers(parser, tiny_dir, tmp_path):
    copy = Parser.load(archive.save(tmp_path / "m", parser.config, parser.vocabs, parser.model))
    texts = ["show me flights from boston to london on friday", "taxi in dallas", "fares"]
    before = copy.parse_batch(texts)
    copy.model.intent_head.temperature.fill_(4.0)
    after = copy.parse_batch(texts)
    assert [p.intent for p in after] == [p.intent for p in before]
    assert [p.entities for p in after] == [p.entities for p in before]
    assert all(a.intent_confidence < b.intent_confidence for a, b in zip(after, before))
    fitted = calibrate_intents(copy, read_seqio(tiny_dir / "valid"))
    assert float(copy.model.intent_head.temperature) == pytest.approx(fitted)


def test_a_format_1_archive_loads_uncalibrated(parser, tmp_path):
    old = archive.save(tmp_path / "old", parser.config, parser.vocabs, parser.model)
    weights = load_file(str(old / "model.safetensors"))
    del weights["intent_head.temperature"]
    save_file(weights, str(old / "model.safetensors"), metadata={"format_version": "1"})
    for name in ("config.yaml", "vocab.json"):
        path = old / name
        text = path.read_text().replace(f"format_version: {FORMAT_VERSION}", "format_version: 1")
        text = text.replace(f'"format_version": {FORMAT_VERSION}', '"format_version": 1')
        path.write_text(text.replace("  crf_likelihood: scaled\n", ""))
    loaded = Parser.load(old)
    assert float(loaded.model.intent_head.temperature) == 1.0
    parsed = loaded.parse("taxi in dallas")
    assert parsed.intent == parser.parse("taxi in dallas").intent


def test_training_sets_the_temperature_in_the_exported_model_whatever_the_precision(
    trained, tiny_dir
):
    """An int8 Parser quantizes a copy of the model: the temperature fitted through it has
    to land in the model that training exports, not only in that copy."""
    from nlu.training.train import calibrate

    loaded = archive.load(trained.model_dir)
    model = build_model(loaded.config.model, loaded.vocabs)
    model.load_state_dict(loaded.state_dict)
    model.intent_head.temperature.fill_(1.0)
    int8 = Parser(model, loaded.vocabs, loaded.config, precision="int8")
    assert int8.model is not model
    fitted = calibrate(int8, model, read_seqio(tiny_dir / "valid"))
    assert fitted != pytest.approx(1.0)
    assert float(model.intent_head.temperature) == pytest.approx(fitted)
    assert float(int8.model.intent_head.temperature) == pytest.approx(fitted)
