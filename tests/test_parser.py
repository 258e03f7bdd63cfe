"""The inference API on the tiny trained model: n-best, confidences, threads, odd input."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from nlu.config import load_config
from nlu.features import collate, featurize
from nlu.inference.precision import MIN_QUANTIZED_WEIGHTS, quantize_int8
from nlu.model import build_model
from nlu.parser import Parser
from nlu.vocab import build_vocabs
from tests.conftest import assert_same_parses


def test_n_best_starts_with_the_best_parse(parser):
    parse = parser.parse("cheapest fare from London to New York", n_best=3)
    assert len(parse.n_best) == 3
    assert parse.n_best[0].tags == parse.tags
    assert [(e.entity, e.value) for e in parse.n_best[0].entities] == [
        (e.entity, e.value) for e in parse.entities
    ]
    scores = [h.score for h in parse.n_best]
    assert scores == sorted(scores, reverse=True) and len({h.tags for h in parse.n_best}) == 3
    assert "n_best" in parse.to_dict() and "n_best" not in parser.parse("hi").to_dict()


def test_entity_confidence_is_a_probability_and_high_on_training_text(parser):
    parse = parser.parse("flights from boston to london on friday")
    assert parse.entities and all(0.5 < e.confidence <= 1.0 for e in parse.entities)
    assert 0.0 < parse.intent_confidence <= 1.0
    assert abs(sum(c for _, c in parse.intent_ranking) - 1.0) < 1e-4  # 5 intents < ranking size


def test_many_threads_get_the_same_answers(parser):
    texts = [f"flights from boston to london on friday {'please ' * (i % 4)}" for i in range(40)]
    expected = [p.to_dict() for p in parser.parse_batch(texts)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda t: parser.parse(t).to_dict(), texts))
    assert_same_parses(got, expected)


def test_odd_input(parser):
    for text in ["", "   ", "?!", "ünïcödé ✈ 東京", "x" * 500]:
        parse = parser.parse(text)
        assert parse.text == text and parse.intent in parser.vocabs.intents.itos
        for e in parse.entities:
            assert text[e.start : e.end] == e.value
    assert parser.parse("?!").entities == ()


def test_softmax_head_parses_with_n_best_and_token_product_confidence():
    vocabs = build_vocabs([["fly", "to", "boston"]], [["O", "O", "B-city"]], ["flight", "other"])
    config = load_config(None, ["model.tag_head=softmax", "model.hidden_dim=8", "model.word_dim=8"])
    torch.manual_seed(0)
    parser = Parser(build_model(config.model, vocabs), vocabs, config)
    parse = parser.parse("fly to boston", n_best=4)
    assert len(parse.n_best) == 4 and parse.n_best[0].tags == parse.tags
    with torch.no_grad():
        batch = collate([featurize(["fly", "to", "boston"], vocabs, parser.tokenizer)])
        out = parser.model.forward_batch(batch)
    probs = out.tag_scores.softmax(-1)[0]
    for e in parse.entities:
        expected = 1.0
        for t in range(e.token_start, e.token_end):
            expected *= float(probs[t, vocabs.tags.stoi[parse.tags[t]]])
        assert e.confidence == pytest.approx(expected, rel=1e-5)


def test_quantized_parser_tags_like_the_float_one(trained, parser, tiny_dir):
    quantized = Parser.load(trained.model_dir, precision="int8", backend="torch")
    assert quantized.quantized and not parser.quantized
    dynamic = {
        type(m).__name__
        for m in quantized.model.modules()
        if ".quantized.dynamic." in type(m).__module__
    }
    assert "LSTM" in dynamic
    # The tiny model's linear layers are all too small to gain from int8 (see below).
    assert all(
        m.weight.numel() < MIN_QUANTIZED_WEIGHTS
        for m in quantized.model.modules()
        if type(m) is torch.nn.Linear
    )
    texts = (tiny_dir / "train" / "seq.in").read_text().splitlines()
    floats, ints = parser.parse_batch(texts), quantized.parse_batch(texts)
    same = sum(f.tags == q.tags and f.intent == q.intent for f, q in zip(floats, ints))
    assert same >= 0.9 * len(texts)
    for q in ints:
        assert all(
            0.0 < e.confidence <= 1.0 and q.text[e.start : e.end] == e.value for e in q.entities
        )


def test_bfloat16_parser_runs_batches_in_bfloat16_and_one_sentence_in_float32(
    trained, parser, tiny_dir
):
    half = Parser.load(trained.model_dir, precision="bfloat16")
    assert half.precision == "bfloat16" and not half.quantized
    split = half.model.encoder._directions
    assert {m.weight_hh_l0.dtype for layer in split for m in layer} == {torch.bfloat16}
    assert half.model.encoder.rnn.weight_hh_l0.dtype == torch.float32  # the fused module
    texts = (tiny_dir / "train" / "seq.in").read_text().splitlines()
    floats, halves = parser.parse_batch(texts), half.parse_batch(texts)
    same = sum(f.tags == h.tags and f.intent == h.intent for f, h in zip(floats, halves))
    assert same >= 0.9 * len(texts)
    for f, h in zip(floats, halves):
        assert h.intent_confidence == pytest.approx(f.intent_confidence, abs=0.05)
    # One sentence runs the float32 module: the float parse, to float rounding.
    alone = half.parse(texts[0]).to_dict()
    assert_same_parses([alone], [parser.parse(texts[0]).to_dict()])


def test_unknown_precision_lists_the_choices(trained):
    with pytest.raises(ValueError, match=r"precision: expected one of \['float32', 'int8'"):
        Parser.load(trained.model_dir, precision="fp16")


@pytest.mark.parametrize("kind", ["rnn", "irnn", "lstm", "peephole_lstm", "gru"])
def test_every_encoder_quantizes(kind):
    vocabs = build_vocabs([["fly", "to", "boston"]], [["O", "O", "B-city"]], ["flight", "other"])
    config = load_config(None, [f"model.encoder={kind}", "model.hidden_dim=8", "model.word_dim=8"])
    torch.manual_seed(0)
    model = build_model(config.model, vocabs)
    texts = ["fly to boston", "to boston fly fly"]
    floats = Parser(model, vocabs, config).parse_batch(texts)
    ints = Parser(quantize_int8(model), vocabs, config).parse_batch(texts)
    for f, q in zip(floats, ints):
        assert q.tokens == f.tokens and len(q.intent_ranking) == len(f.intent_ranking)
        assert q.intent_confidence == pytest.approx(f.intent_confidence, abs=0.05)


def test_attention_parts_of_full_size_quantize():
    """At their shipped sizes the attention parts hold linear layers big enough to quantize,
    the attention's output projection among them (`nn.MultiheadAttention` read that layer's
    weight directly, which broke int8)."""
    vocabs = build_vocabs([["fly", "to", "boston"]], [["O", "O", "B-city"]], ["flight", "other"])
    parts = ["model.attention_branch_dim=128", "model.interaction_dim=128",
             "model.label_attention=true", "model.hidden_dim=64"]  # fmt: skip
    config = load_config(None, parts)
    torch.manual_seed(0)
    model = build_model(config.model, vocabs)
    assert model.branch.attention.out_proj.weight.numel() >= MIN_QUANTIZED_WEIGHTS
    quantized = quantize_int8(model)
    assert ".quantized.dynamic." in type(quantized.interaction.slot_proj).__module__
    assert ".quantized.dynamic." in type(quantized.branch.attention.out_proj).__module__
    texts = ["fly to boston", "to boston fly fly"]
    floats = Parser(model, vocabs, config).parse_batch(texts)
    for f, q in zip(floats, Parser(quantized, vocabs, config).parse_batch(texts)):
        assert q.tokens == f.tokens
        assert q.intent_confidence == pytest.approx(f.intent_confidence, abs=0.05)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_num_threads_holds_the_backend_and_numpy_blas(trained, backend):
    # In a fresh process: the limits are process-wide. NumPy's BLAS would otherwise keep a
    # thread per core, spinning beside a second server worker.
    code = (
        "import json, threadpoolctl\nfrom nlu.parser import Parser\n"
        f"p = Parser.load({str(trained.model_dir)!r}, num_threads=1, backend={backend!r})\n"
        "blas = [p['num_threads'] for p in threadpoolctl.threadpool_info() "
        "if p['user_api'] == 'blas']\n"
        "if p.backend == 'torch':\n    import torch\n    threads = torch.get_num_threads()\n"
        "else:\n    threads = p.engine.session.get_session_options().intra_op_num_threads\n"
        "print(json.dumps([threads, blas]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    threads, blas = json.loads(out.stdout)
    assert threads == 1 and blas and set(blas) == {1}


def test_quantization_skips_linear_layers_too_small_to_gain():
    model = torch.nn.ModuleDict(
        {
            "rnn": torch.nn.LSTM(8, 8),
            "big": torch.nn.Linear(400, 400),  # per token: int8 is faster
            "small": torch.nn.Linear(400, 21),  # one vector per sentence: float is faster
        }
    )
    quantized = quantize_int8(model)
    assert type(quantized["small"]) is torch.nn.Linear
    assert ".quantized.dynamic." in type(quantized["big"]).__module__
    assert ".quantized.dynamic." in type(quantized["rnn"]).__module__


def test_batch_workers_give_the_same_parses(trained, parser, tiny_dir):
    texts = (tiny_dir / "train" / "seq.in").read_text().splitlines() * 3
    texts += ["fly to London on friday", "", "?!"]
    expected = [p.to_dict() for p in parser.parse_batch(texts, batch_size=4)]
    two = Parser.load(trained.model_dir, batch_workers=2, precision="float32")
    got = [p.to_dict() for p in two.parse_batch(texts, batch_size=4)]  # 22 batches, 2 threads
    assert_same_parses(got, expected)
    assert two.batches.started  # the batches did go through the worker threads
    with pytest.raises(ValueError, match="batch_workers"):
        Parser(parser.model, parser.vocabs, parser.config, batch_workers=0)
