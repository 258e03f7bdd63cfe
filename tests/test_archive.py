import json

import pytest

from nlu import archive
from nlu.parser import Parser


def test_save_load_gives_identical_predictions(trained, parser, tmp_path):
    copy = archive.save(tmp_path / "copy", parser.config, parser.vocabs, parser.model, parser.info)
    again = Parser.load(copy)
    texts = ["show me flights from boston to london on friday", "taxi in dallas", ""]
    # Same weights, same code, same batch: bit-identical output.
    assert [p.to_dict() for p in again.parse_batch(texts)] == [
        p.to_dict() for p in parser.parse_batch(texts)
    ]
    assert sorted(p.name for p in copy.iterdir()) == [
        "config.yaml",
        "info.json",
        "model.safetensors",
        "vocab.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left over


def test_run_directory_resolves_to_its_model(trained):
    assert archive.resolve_model_dir(trained.run_dir) == trained.model_dir
    assert (trained.run_dir.parent / "latest").resolve() == trained.run_dir.resolve()
    assert (trained.run_dir / "logs" / "metrics.csv").is_file()


@pytest.fixture
def model_copy(parser, tmp_path):
    return archive.save(tmp_path / "m", parser.config, parser.vocabs, parser.model)


def test_missing_file_is_named(model_copy):
    (model_copy / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"m/vocab\.json: missing"):
        archive.load(model_copy)


def test_truncated_weights_are_named(model_copy):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"model\.safetensors: corrupt weights"):
        archive.load(model_copy)


def test_corrupt_vocab_and_newer_format(model_copy):
    vocab = model_copy / "vocab.json"
    data = json.loads(vocab.read_text())
    vocab.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ValueError, match="format version 99 is newer"):
        archive.load(model_copy)
    vocab.write_text("{not json")
    with pytest.raises(ValueError, match=r"vocab\.json: corrupt"):
        archive.load(model_copy)


def test_weights_that_do_not_fit_the_config(model_copy):
    config = model_copy / "config.yaml"
    config.write_text(config.read_text().replace("hidden_dim: 32", "hidden_dim: 33"))
    with pytest.raises(ValueError, match="weights do not fit config.yaml"):
        Parser.load(model_copy)


# The config lines each format lacked, against the one after it.
NEW_IN_FORMAT = {
    3: ["  crf_likelihood: scaled\n"],
    4: ["  normalize_digits: false\n", "  word_shape_dim: 0\n", "  interaction_dim: 0\n",
        "  label_attention: false\n"],
}  # fmt: skip


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_archive_loads_and_parses_as_it_did(parser, tmp_path, version):
    """Format 2 had no model.crf_likelihood in its config and no provenance in info.json;
    format 3 none of data.normalize_digits, model.word_shape_dim, interaction_dim and
    label_attention."""
    from safetensors.torch import load_file, save_file

    from nlu.config import FORMAT_VERSION

    old = archive.save(tmp_path / "old", parser.config, parser.vocabs, parser.model,
                       {**parser.info, "provenance": [{"seed": 1}]})  # fmt: skip
    config = old / "config.yaml"
    text = config.read_text().replace(
        f"format_version: {FORMAT_VERSION}", f"format_version: {version}"
    )
    for newer in range(version + 1, FORMAT_VERSION + 1):
        for line in NEW_IN_FORMAT[newer]:
            assert line in text
            text = text.replace(line, "")
    config.write_text(text)
    vocab = old / "vocab.json"
    vocab.write_text(json.dumps({**json.loads(vocab.read_text()), "format_version": version}))
    if version < 3:
        info = json.loads((old / "info.json").read_text())
        del info["provenance"]
        (old / "info.json").write_text(json.dumps(info))
    weights = old / "model.safetensors"
    save_file(load_file(str(weights)), str(weights), metadata={"format_version": str(version)})

    loaded = Parser.load(old)
    assert loaded.config.model.crf_likelihood == "scaled"
    texts = ["show me flights from boston to london on friday", "taxi in dallas"]
    assert [p.to_dict() for p in loaded.parse_batch(texts)] == [
        p.to_dict() for p in parser.parse_batch(texts)
    ]
