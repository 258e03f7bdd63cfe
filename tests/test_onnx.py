"""`nlu export` and the ONNX backend: the graph computes what the torch model computes, for
every encoder kind and model part, and parsing with it loads no torch."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cli.main import app
from nlu import archive
from nlu.config import load_config
from nlu.export import export_onnx
from nlu.inference import onnx_engine
from nlu.model import build_model
from nlu.parser import Parser
from nlu.vocab import build_vocabs
from tests.conftest import TINY_OVERRIDES, assert_same_parses

TEXTS = [
    "book a flight to boston",
    "play music",
    "",
    "boston?",
    "a flight to boston now please play some music from london tomorrow",
    "zzz unseen wörds 12:30",
]
VOCABS = build_vocabs(
    [["book", "a", "flight", "to", "boston"], ["play", "music", "now"]],
    [["O", "O", "O", "O", "B-city"], ["O", "B-kind", "I-kind"]],
    ["flight", "music", "other"],
)

# Each encoder kind, and every other part, on top of the tiny settings.
PARTS = [
    *(f"model.encoder={kind}" for kind in ("rnn", "irnn", "lstm", "peephole_lstm", "gru")),
    "model.encoder=peephole_lstm model.num_layers=2 model.bidirectional=false",
    "model.encoder=gru model.num_layers=2 model.intent_pooling=mean",
    "model.char_encoder=lstm model.word_hash_dim=8 model.word_shape_dim=8",
    "model.word_input=one_hot model.char_dim=0 model.word_hash_dim=8",
    "model.attention_branch_dim=16 model.attention_heads=2 model.intent_pooling=attention",
    "model.interaction_dim=16 model.label_attention=true model.intent_level=token",
    "model.slot_intent_dim=8 model.intent_level=token model.token_intent_vote=vote",
    "model.tag_head=softmax model.constrained_decoding=true model.intent_parts=true",
    "model.tag_head=softmax model.intent_pooling=last",
]


def _model_dir(tmp_path, parts: str):
    config = load_config(None, [*TINY_OVERRIDES, *parts.split()])
    torch.manual_seed(0)
    model = build_model(config.model, VOCABS)
    with torch.no_grad():  # heads larger than at initialisation: scores far from uniform
        for p in [*model.tag_head.parameters(), *model.intent_head.parameters()]:
            p.mul_(4.0)
    return archive.save(tmp_path / "model", config, VOCABS, model)


@pytest.mark.parametrize("parts", PARTS)
def test_graph_computes_what_the_model_computes(tmp_path, parts):
    model_dir = _model_dir(tmp_path, parts)
    export_onnx(model_dir)
    torch_parser = Parser.load(model_dir, backend="torch")
    onnx_parser = Parser.load(model_dir, backend="onnx")
    assert onnx_parser.backend == "onnx" and torch_parser.backend == "torch"
    # Batches of several lengths, and each sentence alone (no padding).
    words = [torch_parser.tokenizer.normalize_all(t.split()) or [""] for t in TEXTS]
    for batch in (words, words[:1], words[3:]):
        mine, theirs = torch_parser._scores(batch), onnx_parser._scores(batch)
        assert np.array_equal(mine.mask, theirs.mask)
        real = mine.mask
        np.testing.assert_allclose(theirs.tag_scores[real], mine.tag_scores[real], 1e-5, 1e-4)
        np.testing.assert_allclose(theirs.intent_logits, mine.intent_logits, 1e-5, 1e-4)
    parses = [p.to_dict() for p in torch_parser.parse_batch(TEXTS, n_best=2)]
    assert_same_parses([p.to_dict() for p in onnx_parser.parse_batch(TEXTS, n_best=2)], parses)


def test_trained_model_parses_the_same_with_either_backend(trained, tmp_path):
    copy = archive.save(tmp_path / "m", *_archive_parts(trained.model_dir))
    export_onnx(copy)
    texts = [*TEXTS, "cheapest fare from London to New York", "flights from boston on friday"]
    expected = [p.to_dict() for p in Parser.load(copy, backend="torch").parse_batch(texts)]
    parser = Parser.load(copy)  # auto: the graph is there
    assert parser.backend == "onnx"
    assert_same_parses([p.to_dict() for p in parser.parse_batch(texts)], expected)
    assert_same_parses([parser.parse(t).to_dict() for t in texts], expected)


def _archive_parts(model_dir):
    loaded = Parser.load(model_dir, backend="torch")
    return loaded.config, loaded.vocabs, loaded.model, loaded.info


def test_export_writes_json_and_safetensors_beside_the_graph(parser, tmp_path):
    out = tmp_path / "exported"
    graph = export_onnx(parser.info.get("model_dir") or _saved(parser, tmp_path), out)
    assert graph == out / onnx_engine.ONNX_FILE
    names = {p.name for p in out.iterdir()}
    assert names == {onnx_engine.EMBED_FILE, onnx_engine.ONNX_FILE, onnx_engine.INT8_FILE,
                     onnx_engine.RUNTIME_FILE, onnx_engine.TABLES_FILE}  # fmt: skip
    runtime = json.loads((out / onnx_engine.RUNTIME_FILE).read_text())
    assert runtime["tag_head"] == "crf"
    assert runtime["graphs"] == {"float32": "model.onnx", "int8": "model.int8.onnx"}
    assert runtime["embedding"] == "embed.onnx" and runtime["inputs"] == ["embedded", "mask"]


def _saved(parser, tmp_path):
    return archive.save(tmp_path / "m", parser.config, parser.vocabs, parser.model, parser.info)


def test_auto_takes_torch_without_a_graph_and_onnx_backend_says_what_to_do(parser, tmp_path):
    model_dir = _saved(parser, tmp_path)
    assert Parser.load(model_dir).backend == "torch"
    with pytest.raises(FileNotFoundError, match="runtime.json: not found; export the model"):
        Parser.load(model_dir, backend="onnx")
    export_onnx(model_dir)
    with pytest.raises(ValueError, match="no bfloat16 graph.*the torch backend bfloat16 too"):
        Parser.load(model_dir, backend="onnx", precision="bfloat16")
    assert Parser.load(model_dir, precision="bfloat16").backend == "torch"  # auto
    assert Parser.load(model_dir, precision="int8").backend == "onnx"
    with pytest.raises(ValueError, match="backend: expected one of"):
        Parser.load(model_dir, backend="tensorflow")


def test_onnx_backend_imports_no_torch(parser, tmp_path):
    model_dir = _saved(parser, tmp_path)
    export_onnx(model_dir)
    code = (
        "import sys, json\nimport nlu\n"
        f"p = nlu.load({str(model_dir)!r}, backend='onnx')\n"
        "parse = p.parse('flights from boston to london')\n"
        "print(json.dumps([parse.intent, 'torch' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    intent, torch_loaded = json.loads(out.stdout)
    assert intent == parser.parse("flights from boston to london").intent and not torch_loaded


def test_export_and_tag_from_the_cli(parser, tmp_path):
    model_dir = _saved(parser, tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(model_dir), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert (model_dir / onnx_engine.ONNX_FILE).is_file()
    text = "flights from boston to london"
    for backend in ("onnx", "torch"):
        result = runner.invoke(app, ["tag", "--model", str(model_dir), "--json",
                                     "--backend", backend, text])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["intent"]["name"] == parser.parse(text).intent
    result = runner.invoke(app, ["export", str(model_dir), "--format", "tflite"])
    assert result.exit_code == 1 and "--format: expected one of ['onnx']" in result.output


def test_calibrate_exports_the_graph_again_with_the_new_temperature(parser, tiny_dir, tmp_path):
    model_dir = _saved(parser, tmp_path)
    export_onnx(model_dir)
    result = CliRunner().invoke(app, ["calibrate", "--model", str(model_dir),
                                      "--data", str(tiny_dir)])  # fmt: skip
    assert result.exit_code == 0, result.output
    fitted = json.loads((model_dir / "info.json").read_text())["intent_temperature"]
    runtime = json.loads((model_dir / onnx_engine.RUNTIME_FILE).read_text())
    assert (model_dir / onnx_engine.ONNX_FILE).is_file()
    assert runtime["temperature"] == pytest.approx(fitted, rel=1e-3)
    # The default precision is chosen again, on the held-out data calibration read.
    assert runtime["precision_chosen_by"].startswith("dev scores of")
    assert Parser.load(model_dir).precision == runtime["default_precision"]


def test_int8_graph_quantizes_the_lstm_and_large_products_and_keeps_the_answers(tmp_path):
    import onnx

    model_dir = _model_dir(tmp_path, "model.hidden_dim=64 model.attention_branch_dim=128")
    export_onnx(model_dir)
    ops = {n.op_type for n in onnx.load(str(model_dir / onnx_engine.INT8_FILE)).graph.node}
    assert {"DynamicQuantizeLSTM", "MatMulInteger"} & ops and "LSTM" not in ops
    floats = Parser.load(model_dir, backend="onnx")
    ints = Parser.load(model_dir, backend="onnx", precision="int8")
    assert ints.quantized and not floats.quantized and ints.precision == "int8"
    for f, q in zip(floats.parse_batch(TEXTS), ints.parse_batch(TEXTS)):
        assert q.intent == f.intent and q.tags == f.tags
        assert q.intent_confidence == pytest.approx(f.intent_confidence, abs=0.1)


def test_int8_graph_of_a_trained_model_tags_like_the_float_one(trained, tiny_dir):
    texts = (tiny_dir / "train" / "seq.in").read_text().splitlines()
    floats = Parser.load(trained.model_dir, backend="onnx").parse_batch(texts)
    ints = Parser.load(trained.model_dir, backend="onnx", precision="int8").parse_batch(texts)
    same = sum(f.tags == q.tags and f.intent == q.intent for f, q in zip(floats, ints))
    assert same >= 0.9 * len(texts)


def test_server_runs_the_onnx_backend(trained, parser):
    from fastapi.testclient import TestClient

    from nlu.server import create_app

    texts = ["flights from boston to london", "taxi in dallas", "fares?"]
    with TestClient(create_app(Parser.load(trained.model_dir, precision="float32"))) as client:
        assert client.get("/model").json()["backend"] == "onnx"
        got = [client.post("/model/parse", json={"text": t}).json() for t in texts]
        batch = client.post("/parse/batch", json={"texts": texts}).json()["results"]
    expected = [p.to_dict() for p in parser.parse_batch(texts)]
    assert_same_parses(got, expected)
    assert_same_parses(batch, expected)


def test_training_chooses_the_default_precision_on_dev(trained):
    runtime = json.loads((trained.model_dir / onnx_engine.RUNTIME_FILE).read_text())
    check = runtime["precision_check"]
    close = all(check["int8"][k] >= v - 0.1 for k, v in check["float32"].items())
    assert runtime["default_precision"] == ("int8" if close else "float32")
    assert runtime["precision_chosen_by"].startswith("dev scores of")
    parser = Parser.load(trained.model_dir)
    how = parser.describe()
    assert how["backend"] == "onnx" and how["precision"] == runtime["default_precision"]
    assert how["precision_chosen_by"] == runtime["precision_chosen_by"]
    assert how["num_threads"] == 1 and how["batch_workers"] >= 1
    assert (
        Parser.load(trained.model_dir, precision="float32").describe()["precision_chosen_by"]
        == "asked"
    )
    torch_parser = Parser.load(trained.model_dir, backend="torch")
    assert torch_parser.precision == "float32"
    assert torch_parser.describe()["precision_chosen_by"] == "the torch backend's default"


def test_export_with_data_chooses_the_precision_and_tag_verbose_says_it(parser, tiny_dir, tmp_path):
    model_dir = _saved(parser, tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["export", str(model_dir), "--data", str(tiny_dir)])
    assert result.exit_code == 0, result.output
    assert "default precision" in result.output
    runtime = json.loads((model_dir / onnx_engine.RUNTIME_FILE).read_text())
    result = runner.invoke(app, ["tag", "--model", str(model_dir), "--verbose", "fares"])
    assert result.exit_code == 0, result.output
    assert f"backend onnx, precision {runtime['default_precision']} (dev scores of" in result.output


def test_a_graph_of_another_runtime_version_is_refused_with_the_command_that_renews_it(
    parser, tmp_path
):
    model_dir = _saved(parser, tmp_path)
    export_onnx(model_dir)
    path = model_dir / onnx_engine.RUNTIME_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "runtime_version": 2}))
    with pytest.raises(ValueError, match=r"runtime version 2, this nlu reads 3; export the model"):
        Parser.load(model_dir, backend="onnx")
    assert Parser.load(model_dir).backend == "torch"  # auto: the graph is not usable
