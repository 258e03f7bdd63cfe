"""`nlu data convert|validate|stats|fetch` through the Typer app, as a user runs them."""

import functools
import http.server
import json
import subprocess
import sys
import threading

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import FIXTURES, TINY

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["data", *map(str, args)])


def test_convert_infers_the_format_from_the_target(tmp_path):
    result = invoke("convert", FIXTURES / "snips_dataset.json", tmp_path / "out.yml")
    assert result.exit_code == 0, result.output
    assert "17 utterances" in result.output and "(rasa)" in result.output
    text = (tmp_path / "out.yml").read_text()
    assert "- intent: turnLightOn" in text and "[living room](room)" in text
    result = invoke("convert", TINY / "train", tmp_path / "tiny", "--to", "seqio")
    assert result.exit_code == 0 and (tmp_path / "tiny" / "seq.out").is_file()


def test_convert_seqio_to_jsonl_and_back_is_byte_identical(tmp_path):
    assert invoke("convert", TINY / "test", tmp_path / "test.jsonl").exit_code == 0
    assert invoke("convert", tmp_path / "test.jsonl", tmp_path / "back").exit_code == 0
    for name in ("seq.in", "seq.out", "label"):
        assert (tmp_path / "back" / name).read_bytes() == (TINY / "test" / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.yml", b"nlu:\n- intent: a\n  examples: |\n    - [x]{oops}\n", "in.yml:4: expected {"),
        ("in.json", b'{"intents": {"a":\n  {"utterances": [{"data": 3}]}}}', "in.json:2: expected"),
        ("in.conll", b"fly O\n\xff O\n", "in.conll:2: expected UTF-8 text, found byte 0xff"),
        ("in.jsonl", b'{"text": "hi"}\n', "in.jsonl:1: expected str field 'intent', found none"),
    ],
)  # fmt: skip
def test_convert_bad_input_is_one_line_exit_1_and_writes_nothing(tmp_path, name, content, message):
    source = tmp_path / name
    source.write_bytes(content)
    result = invoke("convert", source, tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == [source]


def test_convert_refuses_an_unknown_target_format(tmp_path):
    result = invoke("convert", TINY / "test", tmp_path / "out.xml")
    assert result.exit_code == 1 and "expected --to with one of jsonl, conll, seqio, rasa" in (
        result.output
    )


def test_convert_prints_notes_for_what_it_skipped(tmp_path):
    result = invoke("convert", FIXTURES / "rasa_nlu.yml", tmp_path / "out.conll")
    assert result.exit_code == 0
    assert "note: " in result.output and "synonym 'NYC' skipped" in result.output


def test_validate_exits_0_with_warnings_and_1_with_errors(tmp_path):
    result = invoke("validate", TINY)
    assert result.exit_code == 0, result.output
    assert "warning: " in result.output and "is not in the training data" in result.output
    assert result.output.strip().splitlines()[-1].startswith("0 errors, ")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"tokens": ["a", "b"], "tags": ["O"], "intent": "x"}\n{"text": "", "intent": "x"}\n'
    )
    result = invoke("validate", bad)
    assert result.exit_code == 1
    assert f"error: {bad}:1: expected 2 tags (one per token), found 1" in result.output
    assert f"error: {bad}:2: expected an utterance" in result.output
    assert "2 errors (misaligned 1, empty 1), 0 warnings" in result.output


def test_validate_limits_each_kind(tmp_path):
    rows = [{"tokens": ["a"], "tags": ["X"], "intent": "x"}] * 5
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("validate", path, "--limit", 2)
    assert result.output.count("error: ") == 2 and "... 3 more bio errors" in result.output


def test_stats_prints_tables_and_json():
    result = invoke("stats", TINY)
    assert result.exit_code == 0, result.output
    header, train = result.output.splitlines()[:2]
    assert "utterances" in header and "OOV tokens" in header
    assert train.split()[:2] == ["tiny/train", "20"]
    assert "toloc.city_name" in result.output and "1-5" in result.output
    parsed = json.loads(invoke("stats", TINY, "--json").output)
    assert [s["utterances"] for s in parsed] == [20, 4, 4] and parsed[0]["oov_rate"] is None


def multi_intent_split(folder, separator="#"):
    """A seq.in / seq.out / label split with one, two and three intents a message."""
    folder.mkdir(parents=True)
    two, three = f"play{separator}rate", f"play{separator}rate{separator}book"
    rows = [("play jazz", "O B-genre", "play"),
            ("play jazz and rate it", "O B-genre O O O", two),
            ("play jazz rate it then book", "O B-genre O O O O", three),
            ("book a table", "O O O", "book")]  # fmt: skip
    for name, column in (("seq.in", 0), ("seq.out", 1), ("label", 2)):
        (folder / name).write_text("".join(row[column] + "\n" for row in rows))
    return folder


def test_stats_and_validate_count_the_intents_of_each_message(tmp_path):
    train = multi_intent_split(tmp_path / "mix" / "train")
    parsed = json.loads(invoke("stats", str(train), "--json").output)[0]
    assert parsed["intents_per_utterance"] == {"1": 2, "2": 1, "3": 1}
    assert parsed["single_intents"] == {"play": 3, "book": 2, "rate": 2}
    table = invoke("stats", str(train)).output
    assert "intents per utterance" in table and "single intent" in table
    result = invoke("validate", str(train))
    assert result.exit_code == 0 and f"{train} 1: 2, 2: 1, 3: 1" in result.output
    # Rasa's separator, and none: a label is then one intent whatever it holds.
    plus = multi_intent_split(tmp_path / "rasa" / "train", separator="+")
    args = ("stats", str(plus), "--json", "--intent-separator")
    assert json.loads(invoke(*args, "+").output)[0]["intents_per_utterance"]["3"] == 1
    assert json.loads(invoke(*args, "").output)[0]["intents_per_utterance"] == {"1": 4}


@pytest.fixture()
def mirror(tmp_path):
    """A local HTTP server with the tiny dataset laid out like the public source."""
    root = tmp_path / "www"
    for split in ("train", "valid", "test"):
        (root / "atis" / split).mkdir(parents=True)
        for name in ("seq.in", "seq.out", "label"):
            (root / "atis" / split / name).write_bytes((TINY / split / name).read_bytes())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_downloads_and_checks_the_splits(tmp_path, mirror):
    root, url = mirror
    result = invoke("fetch", "atis", "--to", tmp_path / "data", "--source", f"{url}/atis")
    assert result.exit_code == 0, result.output
    assert "atis: train 20, valid 4, test 4 utterances" in result.output
    for split in ("train", "valid", "test"):
        for name in ("seq.in", "seq.out", "label"):
            got = (tmp_path / "data" / "atis" / split / name).read_bytes()
            assert got == (TINY / split / name).read_bytes()
    again = invoke("fetch", "atis", "--to", tmp_path / "data", "--source", f"{url}/atis")
    assert again.exit_code == 1 and "expected no folder there, found one" in again.output


def test_fetch_failures_leave_nothing_behind(tmp_path, mirror):
    root, url = mirror
    (root / "atis" / "test" / "label").unlink()
    result = invoke("fetch", "atis", "--to", tmp_path / "data", "--source", f"{url}/atis")
    assert result.exit_code == 1
    assert f"{url}/atis/test/label: expected the file, found HTTP 404" in result.output
    assert list((tmp_path / "data").iterdir()) == []
    (root / "atis" / "test" / "label").write_text("only one line\n")
    result = invoke("fetch", "atis", "--to", tmp_path / "data", "--source", f"{url}/atis")
    assert result.exit_code == 1 and "expected the same number of lines" in result.output
    assert list((tmp_path / "data").iterdir()) == []
    assert "unknown dataset 'geo'" in invoke("fetch", "geo").output


def test_data_commands_load_neither_torch_nor_datasets():
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom cli.main import app\n"
        "r = CliRunner().invoke(app, ['data', 'validate', 'tests/fixtures/tiny'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted({'torch', 'datasets', 'pytorch_lightning'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
