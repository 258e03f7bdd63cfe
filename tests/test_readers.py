from pathlib import Path

import pytest

from nlu.data.readers import DataWarning
from nlu.data.seqio import read_seqio, resolve_split


def write(folder: Path, seq_in: str, seq_out: str, label: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "seq.in").write_text(seq_in)
    (folder / "seq.out").write_text(seq_out)
    (folder / "label").write_text(label)
    return folder


def test_reads_tokens_tags_and_intent(tmp_path):
    folder = write(tmp_path, "fly to boston \nhi\n", "O O B-city\nO\n", "flight\ngreet\n")
    examples = read_seqio(folder)
    assert examples[0].tokens == ("fly", "to", "boston")  # trailing space is fine (SNIPS has it)
    assert examples[0].tags == ("O", "O", "B-city")
    assert examples[1].intent == "greet"


def test_tag_count_mismatch_names_file_and_line(tmp_path):
    folder = write(tmp_path, "a b\nfly to boston\n", "O O\nO B-city\n", "x\ny\n")
    with pytest.raises(
        ValueError, match=r"seq\.out:2: expected 3 tags \(one per token in seq\.in\), found 2"
    ):
        read_seqio(folder)


def test_line_count_mismatch(tmp_path):
    folder = write(tmp_path, "a\nb\n", "O\nO\n", "x\n")
    with pytest.raises(ValueError, match="expected the same number of lines.*label has 1"):
        read_seqio(folder)


def test_empty_file(tmp_path):
    folder = write(tmp_path, "", "", "")
    with pytest.raises(ValueError, match=r"seq\.in: empty file"):
        read_seqio(folder)


def test_bad_tag_names_line_and_tag(tmp_path):
    folder = write(tmp_path, "a b\n", "O X-city\n", "x\n")
    with pytest.raises(ValueError, match=r"seq\.out:1: expected a BIO tag .*found 'X-city'"):
        read_seqio(folder)


def test_orphan_inside_tag_is_read_as_begin_with_a_warning(tmp_path):
    folder = write(tmp_path, "to new york\nto boston\n", "O I-city I-city\nO I-city\n", "x\nx\n")
    with pytest.warns(DataWarning, match="2 line"):
        examples = read_seqio(folder)
    assert examples[0].tags == ("O", "B-city", "I-city")


def test_missing_file_and_undecodable_bytes(tmp_path):
    with pytest.raises(FileNotFoundError, match="seq.in: file not found"):
        read_seqio(tmp_path)
    folder = write(tmp_path / "bad", "ok\n", "O\n", "x\n")
    (folder / "seq.in").write_bytes(b"ok\n\xff\n")
    with pytest.raises(ValueError, match=r"seq\.in:2: expected UTF-8"):
        read_seqio(folder)


def test_resolve_split_by_name_and_by_path(tmp_path, monkeypatch, tiny_dir):
    write(tmp_path / "mydata" / "train", "a\n", "O\n", "x\n")
    monkeypatch.setenv("NLU_DATA_DIR", str(tmp_path))
    assert resolve_split("mydata", "train") == tmp_path / "mydata" / "train"
    assert resolve_split(str(tiny_dir), "test") == tiny_dir / "test"
    with pytest.raises(FileNotFoundError, match=r"datasets there: \['mydata'\]"):
        resolve_split("atis", "train")
    monkeypatch.delenv("NLU_DATA_DIR")
    with pytest.raises(FileNotFoundError, match="NLU_DATA_DIR is not set"):
        resolve_split("atis", "train")


def test_reads_the_fixture(tiny_dir):
    assert len(read_seqio(tiny_dir / "train")) == 20
