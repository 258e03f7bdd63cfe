"""The model directory: config.yaml, vocab.json, model.safetensors and info.json. No pickle.

Torch loads only to read or write the weights: `load_meta` reads the rest without it, for the
ONNX runtime (whose own files `nlu.export` adds).

Writing goes to a temporary sibling folder that is renamed into place, so a crash never leaves a
half-written model behind. Reading validates every file and names the one that is wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from nlu.config import FORMAT_VERSION, ExperimentConfig, config_from_dict, dump_config
from nlu.vocab import Vocabs

if TYPE_CHECKING:
    from torch import Tensor, nn

CONFIG_FILE = "config.yaml"
VOCAB_FILE = "vocab.json"
WEIGHTS_FILE = "model.safetensors"
INFO_FILE = "info.json"


@dataclass(frozen=True)
class Archive:
    """The contents of a model directory."""

    config: ExperimentConfig
    vocabs: Vocabs
    state_dict: dict[str, Tensor]
    info: dict[str, Any] = field(default_factory=dict)


def save(
    model_dir: str | os.PathLike,
    config: ExperimentConfig,
    vocabs: Vocabs,
    model: nn.Module,
    info: dict[str, Any] | None = None,
    extra: Callable[[Path], Any] | None = None,
) -> Path:
    """Write a model directory atomically (replacing an existing one) and return its path.

    `extra` writes more files into the directory before it is renamed into place (the ONNX
    graph, `nlu.export.write_onnx`)."""
    from safetensors.torch import save_file

    model_dir = Path(model_dir)
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}.", dir=model_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a model directory is meant to be shared
        (tmp / CONFIG_FILE).write_text(dump_config(config), encoding="utf-8")
        vocab_doc = {"format_version": FORMAT_VERSION, **vocabs.to_json()}
        (tmp / VOCAB_FILE).write_text(json.dumps(vocab_doc, ensure_ascii=False), encoding="utf-8")
        tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(
            tensors, str(tmp / WEIGHTS_FILE), metadata={"format_version": str(FORMAT_VERSION)}
        )
        (tmp / INFO_FILE).write_text(json.dumps(info or {}, indent=2), encoding="utf-8")
        if extra is not None:
            extra(tmp)
        for written in tmp.iterdir():
            written.chmod(0o644)
        if model_dir.exists():
            old = model_dir.with_name(f".{model_dir.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            model_dir.rename(old)
            tmp.rename(model_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(model_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return model_dir


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A model directory, given it or a run directory that holds one in `model/`."""
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    if (path / "model" / CONFIG_FILE).is_file():
        return path / "model"
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no such model; train one with `nlu train` or pass --model DIR"
        )
    raise FileNotFoundError(f"{path / CONFIG_FILE}: not found; {path} is not a model directory")


def _check_version(found: Any, where: Path) -> None:
    if not isinstance(found, int):
        raise ValueError(f"{where}: expected an integer format_version, found {found!r}")
    if found > FORMAT_VERSION:
        raise ValueError(
            f"{where}: format version {found} is newer than this nlu reads ({FORMAT_VERSION}); "
            "upgrade nlu to load this model"
        )


def _read_versioned(path: Path, parse: Callable[[str], Any], errors: tuple) -> dict[str, Any]:
    """Parse a YAML/JSON mapping that carries a format version; errors name the file."""
    try:
        data = parse(path.read_text(encoding="utf-8"))
    except (*errors, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: corrupt file ({e.__class__.__name__}: {e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping, found {type(data).__name__}")
    _check_version(data.get("format_version"), path)
    return data


def _read_config(path: Path) -> ExperimentConfig:
    data = _read_versioned(path, yaml.safe_load, (yaml.YAMLError,))
    try:
        return config_from_dict(data)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None


def _read_vocabs(path: Path) -> Vocabs:
    data = _read_versioned(path, json.loads, (json.JSONDecodeError,))
    try:
        return Vocabs.from_json(data)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: invalid vocabulary ({e})") from None


@dataclass(frozen=True)
class Meta:
    """What a model directory holds beside its weights."""

    model_dir: Path
    config: ExperimentConfig
    vocabs: Vocabs
    info: dict[str, Any]


def load_meta(model_dir: str | os.PathLike) -> Meta:
    """Read and validate a model directory's config, vocabularies and info (no torch)."""
    model_dir = resolve_model_dir(model_dir)
    for name in (CONFIG_FILE, VOCAB_FILE):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir / name}: missing from the model directory")
    config = _read_config(model_dir / CONFIG_FILE)
    vocabs = _read_vocabs(model_dir / VOCAB_FILE)
    info: dict[str, Any] = {}
    if (model_dir / INFO_FILE).is_file():
        try:
            info = json.loads((model_dir / INFO_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{model_dir / INFO_FILE}: corrupt ({e})") from None
    return Meta(model_dir, config, vocabs, info)


def load(model_dir: str | os.PathLike) -> Archive:
    """Read and validate a model directory (or a run directory holding `model/`)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = resolve_model_dir(model_dir)
    if not (model_dir / WEIGHTS_FILE).is_file():  # named before the other files are read
        raise FileNotFoundError(f"{model_dir / WEIGHTS_FILE}: missing from the model directory")
    meta = load_meta(model_dir)
    try:
        state_dict = load_file(str(model_dir / WEIGHTS_FILE))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"{model_dir / WEIGHTS_FILE}: corrupt weights ({e})") from None
    return Archive(meta.config, meta.vocabs, state_dict, meta.info)
