import gc
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import TINY_OVERRIDES, assert_same_parses

runner = CliRunner()


def invoke(*args, **kwargs):
    return runner.invoke(app, list(args), **kwargs)


@pytest.fixture(autouse=True)
def unfrozen_collector():
    """`nlu tag` freezes the garbage collector for its process: give the test process it back."""
    yield
    gc.unfreeze()


def test_tag_freezes_the_collector_after_loading(trained):
    gc.unfreeze()
    result = invoke("tag", "--model", str(trained.model_dir), "fly to London")
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() > 0


def test_tag_prints_intent_and_slots(trained):
    result = invoke("tag", "--model", str(trained.model_dir), "fly from Boston to London")
    assert result.exit_code == 0, result.output
    assert "intent: flight" in result.output
    assert "toloc.city_name" in result.output and "London" in result.output


def test_tag_json_is_rasa_shaped(trained):
    text = "Cheapest fare from London to New York!"
    result = invoke("tag", "--json", "--model", str(trained.model_dir), text)
    assert result.exit_code == 0, result.output
    parse = json.loads(result.output)
    assert set(parse) == {"text", "intent", "intent_ranking", "entities"}
    assert set(parse["intent"]) == {"name", "confidence"} and parse["text"] == text
    for e in parse["entities"]:
        assert set(e) == {"entity", "value", "start", "end", "confidence_entity", "extractor"}
        assert text[e["start"] : e["end"]] == e["value"]
    assert {"entity": "toloc.city_name", "value": "New York"}.items() <= parse["entities"][
        -1
    ].items()


def test_tag_quantized(trained):
    result = invoke("tag", "--quantize", "--model", str(trained.model_dir), "fly to London")
    assert result.exit_code == 0, result.output
    assert "toloc.city_name" in result.output and "London" in result.output


def test_tag_bfloat16(trained):
    result = invoke(
        "tag", "--precision", "bfloat16", "--model", str(trained.model_dir), "fly to London"
    )
    assert result.exit_code == 0 and "London" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--precision", "fp16"], "precision: expected one of"),
        (["--quantize", "--precision", "bfloat16"], "--quantize means --precision int8"),
    ],
)
def test_tag_bad_precision_is_one_line(trained, args, message):
    result = invoke("tag", *args, "--model", str(trained.model_dir), "hi")
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_tag_uses_nlu_model_env(trained, parser, monkeypatch, tmp_path):
    # A folder without runs/latest: only $NLU_MODEL can lead `nlu tag` to the model.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLU_MODEL", str(trained.run_dir))
    text = "taxi in boston"
    result = invoke("tag", "--json", "--precision", "float32", text)
    assert result.exit_code == 0, result.output
    parse = json.loads(result.output)
    assert parse["intent"]["name"] == "ground_service"
    assert_same_parses(parse, parser.parse(text).to_dict())


def test_evaluate_prints_scores_and_writes_json(trained, tiny_dir, tmp_path):
    out = tmp_path / "report.json"
    result = invoke(
        "evaluate",
        "--model",
        str(trained.model_dir),
        "--data",
        str(tiny_dir),
        "--split",
        "train",
        "--json",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert "F1 100.00" in result.output and "sentence   accuracy 100.00" in result.output
    assert "per slot" in result.output and "toloc.city_name" in result.output
    assert json.loads(out.read_text())["slot"]["f1"] == 100.0
    # The training split has one two-intent label ("a#b"): the multi-intent scores show.
    assert "intents    set accuracy" in result.output and "overall accuracy" in result.output
    assert json.loads(out.read_text())["intent_f1"]["support"] == 21
    # Scored on its own training split, no span holds a word unseen in training.
    assert json.loads(out.read_text())["slot_unseen"]["support"] == 0


def test_evaluate_writes_a_report_of_a_tiny_model(trained, tiny_dir, tmp_path):
    out = tmp_path / "report"
    result = invoke(
        "evaluate", "--model", str(trained.model_dir), "--data", str(tiny_dir), "--report", str(out)
    )
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    # The test split has an intent ("distance") and a slot (toloc.country_name) never trained on.
    assert metrics["per_intent"]["distance"]["recall"] == 0.0
    assert metrics["per_slot"]["toloc.country_name"]["recall"] == 0.0
    errors = (out / "errors.md").read_text()
    assert "- gold: how far is " in errors and "boston `fromloc.city_name`]" in errors
    assert "- intent: `distance` → **`" in errors
    assert "**[paris `toloc.country_name`]**" in errors
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "test/seq.in:2" in page
    # "paris" never occurs in the training split: its span counts among the unseen-word ones.
    unseen = metrics["slot_unseen"]
    assert (
        unseen["support"] >= 1
        and unseen["support"] + metrics["slot_seen"]["support"] == (metrics["slot"]["support"])
    )
    line = f"slot F1 on spans with a word unseen in training {unseen['f1']:.2f}"
    assert line in result.output and line in (out / "slots.md").read_text()
    assert "spans with a word unseen in training / the rest" in page


def test_evaluate_without_the_training_data_says_so_and_scores(trained, tiny_dir, tmp_path):
    import shutil

    model = shutil.copytree(trained.model_dir, tmp_path / "model")
    config = model / "config.yaml"
    config.write_text(config.read_text().replace(f"name: {tiny_dir}", "name: /no/such/data"))
    result = invoke("evaluate", "--model", str(model), "--data", str(tiny_dir))
    assert result.exit_code == 0, result.output
    assert "note: no unseen-word scores: the training data cannot be read" in result.output
    assert "slot F1 on spans with a word unseen" not in result.output


def test_evaluate_report_over_a_file_is_one_line(trained, tiny_dir, tmp_path):
    (tmp_path / "file").write_text("")
    result = invoke(
        "evaluate",
        "--model",
        str(trained.model_dir),
        "--data",
        str(tiny_dir),
        "--report",
        str(tmp_path / "file"),
    )
    assert result.exit_code == 1 and "expected a directory for the report" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tag", "--model", "/no/such/model", "hi"], "no such model; train one with `nlu train`"),
        (["evaluate", "--model", "/no/such/model"], "no such model"),
        (["train", "/no/such.yaml"], "config file not found"),
        (
            ["train", "configs/atis_bilstm_crf.yaml", "--set", "model.hiden=3"],
            "unknown key model.hiden; valid keys",
        ),
    ],
)
def test_user_errors_are_one_line_exit_1(args, message):
    result = invoke(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_missing_dataset_is_one_line(trained, monkeypatch, tmp_path):
    monkeypatch.setenv("NLU_DATA_DIR", str(tmp_path))
    result = invoke("evaluate", "--model", str(trained.model_dir), "--data", "atis")
    assert result.exit_code == 1 and "no such data folder" in result.output


def test_train_from_the_cli(tmp_path):
    args = [
        "train",
        "configs/atis_bilstm_crf.yaml",
        *[a for o in TINY_OVERRIDES for a in ("--set", o)],
        "--set",
        "train.max_epochs=2",
        "--set",
        "train.lr_schedule=cosine",
        "--set",
        "train.ema_decay=0.9",
        "--set",
        "train.gradient_clip_algorithm=value",
        "--set",
        "model.locked_dropout=true",
        "--set",
        f"runs_dir={tmp_path}",
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert (
        "dev: slot F1" in result.output
        and (tmp_path / "latest" / "model" / "model.safetensors").is_file()
    )
    assert "test as served (onnx " in result.output


def test_tag_reads_stdin(trained):
    result = invoke(
        "tag",
        "--json",
        "--model",
        str(trained.model_dir),
        "-",
        input="taxi in boston\nfares to dallas\n",
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [p["text"] for p in lines] == ["taxi in boston", "fares to dallas"]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_tag_file_to_jsonl(trained, tmp_path, suffix):
    texts = ["taxi in boston", "", "cheapest fare from london to new york"]
    source = tmp_path / f"in{suffix}"
    if suffix == ".txt":
        source.write_text("".join(t + "\n" for t in texts))
    else:
        source.write_text(
            "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts))
        )
    out = tmp_path / "out.jsonl"
    result = invoke(
        "tag", "--model", str(trained.model_dir), "--input", str(source), "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    parses = [json.loads(line) for line in out.read_text().splitlines()]
    assert [p["text"] for p in parses] == texts
    assert parses[2]["entities"][-1]["value"] == "new york"


def test_tag_bad_jsonl_names_the_line_and_writes_nothing(trained, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "hi"}\n{"txt": "oops"}\n')
    out = tmp_path / "out.jsonl"
    result = invoke(
        "tag", "--model", str(trained.model_dir), "--input", str(source), "--output", str(out)
    )
    assert result.exit_code == 1
    assert "in.jsonl:2: expected an object with a string field 'text'" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_tag_needs_something_to_tag(trained):
    result = invoke("tag", "--model", str(trained.model_dir))
    assert result.exit_code == 1 and "give texts to tag" in result.output


def test_tag_n_best(trained):
    result = invoke(
        "tag", "--json", "--n-best", "2", "--model", str(trained.model_dir), "taxi in boston"
    )
    assert result.exit_code == 0 and len(json.loads(result.output)["n_best"]) == 2


def test_shell_parses_lines_until_quit(trained, tmp_path, monkeypatch):
    import cli.shell

    monkeypatch.setattr(cli.shell, "HISTORY", tmp_path / "history")
    result = invoke(
        "shell",
        "--model",
        str(trained.model_dir),
        input="flights from boston to london\n\n:quit\nnever read\n",
    )
    assert result.exit_code == 0, result.output
    assert "intent: flight" in result.output and "toloc.city_name = 'london'" in result.output
    assert "never read" not in result.output


def test_shell_leaves_on_end_of_input(trained, tmp_path, monkeypatch):
    import cli.shell

    monkeypatch.setattr(cli.shell, "HISTORY", tmp_path / "history")
    result = invoke("shell", "--model", str(trained.model_dir), input="taxi in dallas\n")
    assert result.exit_code == 0 and "ground_service" in result.output


def test_serve_with_a_missing_model_is_one_line():
    result = invoke("serve", "--model", "/no/such/model")
    assert result.exit_code == 1 and "no such model" in result.output


def test_serve_hands_its_options_to_the_supervised_workers(trained, monkeypatch):
    """`nlu serve` checks the model, then hands a spec to its supervisor; a worker builds its
    app from that spec (checked by building it here, as a worker would)."""
    from fastapi.testclient import TestClient

    import nlu.server.supervisor
    from nlu.server import create_app

    specs = []

    class Supervisor:
        def __init__(self, spec, host, port, workers):
            specs.append((spec, workers))

        def run(self):
            return 0

    monkeypatch.setattr(nlu.server.supervisor, "Supervisor", Supervisor)
    args = ["--model", str(trained.model_dir), "--workers", "2", "--quantize", "--micro-batch",
            "--max-queue", "8", "--grace-period", "5", "--access-log", "json"]  # fmt: skip
    result = invoke("serve", *args)
    assert result.exit_code == 0, result.output
    ((spec, workers),) = specs
    assert workers == 2 and spec.grace_s == 5 and spec.options.precision == "int8"
    assert spec.settings.micro_batch and spec.settings.max_queue == 8
    assert spec.settings.model_root == str(Path(trained.model_dir).parent)
    assert spec.settings.access_log == "json" and spec.options.threads == 1
    app = create_app(spec.options.load(spec.model), spec.settings, spec.options)
    with TestClient(app) as client:
        body = client.post("/model/parse", json={"text": "fly to London"}).json()
        assert body["entities"][0]["value"] == "London"
        assert client.get("/model").json()["quantized"] is True


def test_serve_cli_defaults_match_the_servers():
    from cli import serve
    from nlu.server import scheduler, worker

    assert serve.DEFAULT_MAX_QUEUE == scheduler.DEFAULT_MAX_QUEUE
    assert serve.DEFAULT_GRACE_S == worker.DEFAULT_GRACE_S


def test_serve_refuses_zero_workers_and_bad_options(trained):
    model = ["--model", str(trained.model_dir)]
    result = invoke("serve", *model, "--workers", "0")
    assert result.exit_code == 1 and "--workers" in result.output
    result = invoke("serve", *model, "--max-queue", "0")
    assert result.exit_code == 1 and "--max-queue: expected at least 1" in result.output
    result = invoke("serve", *model, "--access-log", "xml")
    assert result.exit_code == 1 and "--access-log: expected one of" in result.output


def test_train_seeds_writes_an_aggregate_that_compare_reads(tmp_path):
    args = [a for o in TINY_OVERRIDES for a in ("--set", o)]
    result = invoke(
        "train", *args, "--set", "train.max_epochs=2", "--set", f"runs_dir={tmp_path}",
        "--seeds", "1,2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (aggregate_dir,) = tmp_path.glob("*-seeds1-2")
    summary = json.loads((aggregate_dir / "aggregate.json").read_text())
    runs = [
        json.loads((tmp_path / r["run_dir"] / "metrics.json").read_text()) for r in summary["runs"]
    ]
    assert [r["seed"] for r in summary["runs"]] == [1, 2]
    f1 = [r["metrics"]["dev"]["slot_f1"] for r in runs]
    assert summary["mean"]["dev"]["slot_f1"] == pytest.approx(sum(f1) / 2)
    assert f"aggregate: {aggregate_dir}" in result.output and "dev scores" in result.output
    compared = invoke("compare", str(aggregate_dir), "--split", "dev")
    assert compared.exit_code == 0, compared.output
    mean = summary["mean"]["dev"]["slot_f1"]
    assert f"{mean:.2f} ±" in compared.output and "1,2" in compared.output


def test_bad_seeds_and_runs_are_one_line(tmp_path):
    result = invoke("train", "--seeds", "1,x")
    assert result.exit_code == 1 and "--seeds: expected comma-separated integers" in result.output
    result = invoke("compare", str(tmp_path))
    assert result.exit_code == 1 and "expected a run directory (metrics.json)" in result.output


def test_data_warnings_are_one_line(capsys):
    import warnings

    from cli._output import data_notes
    from nlu.data.readers import DataWarning

    with data_notes(), warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("nlu.yml:28: synonym item skipped", DataWarning, stacklevel=1)
    assert capsys.readouterr().err == "warning: nlu.yml:28: synonym item skipped\n"


def test_calibrate_refits_the_temperature_and_changes_no_answer(parser, tiny_dir, tmp_path):
    from nlu import archive
    from nlu.parser import Parser

    model = archive.save(tmp_path / "m", parser.config, parser.vocabs, parser.model, parser.info)
    texts = ["fly to London on friday", "taxi in dallas", "fares"]
    before = Parser.load(model)
    before.model.intent_head.temperature.fill_(1.0)
    archive.save(model, before.config, before.vocabs, before.model, before.info)
    answers = [(p.intent, p.entities) for p in Parser.load(model).parse_batch(texts)]
    result = invoke("calibrate", "--model", str(model), "--data", str(tiny_dir))
    assert result.exit_code == 0, result.output
    assert "intent temperature 1.0000 ->" in result.output
    after = Parser.load(model)
    info = json.loads((model / "info.json").read_text())
    assert info["intent_temperature_fitted_on"].endswith("/valid")
    assert float(after.model.intent_head.temperature) == pytest.approx(
        info["intent_temperature"], rel=1e-3
    )
    assert [(p.intent, p.entities) for p in after.parse_batch(texts)] == answers


def test_calibrate_with_a_missing_dataset_is_one_line(trained):
    result = invoke("calibrate", "--model", str(trained.model_dir), "--data", "/no/such/data")
    assert result.exit_code == 1
    assert result.output == "error: /no/such/data/valid: no such data folder\n"


def rounded(value, digits=5):
    """A JSON value with its floats rounded: batches of other sizes round differently."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def test_tag_file_with_two_workers_equals_one(trained, tmp_path):
    """Two workers parse two batches of 256 at once; the file comes out the same, in order
    (confidences to float rounding: the batches are made up differently)."""
    words = ["taxi in boston", "cheapest fare from london to new york", "fly to dallas", ""]
    texts = [f"{words[i % 4]} {i}".strip() for i in range(700)]  # three batches of up to 256
    source = tmp_path / "in.txt"
    source.write_text("".join(t + "\n" for t in texts))
    outputs = []
    for workers in ("1", "2"):
        target = tmp_path / f"out{workers}.jsonl"
        result = invoke(
            "tag", "--model", str(trained.model_dir), "--input", str(source),
            "--output", str(target), "--workers", workers, "--precision", "float32",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append([rounded(json.loads(line)) for line in target.read_text().splitlines()])
    assert outputs[0] == outputs[1]
    assert [record["text"] for record in outputs[1]] == texts
    assert invoke("tag", "--model", str(trained.model_dir), "--workers", "0", "hi").exit_code != 0
