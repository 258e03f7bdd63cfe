"""Experiment configuration: frozen dataclasses read from YAML with dotted overrides.

Every field has a default, so a YAML file only says what differs. Unknown keys and values of the
wrong type or outside a choice fail with a message that lists what is valid.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

# The model directory's format. 2: the weights carry the intent temperature
# (`intent_head.temperature`); a format 1 archive loads with temperature 1. 3: the config has
# model.crf_likelihood, intent_level, token_intent_vote and attention_branch_dim, and info.json
# the run's provenance; a format 2 archive loads with their defaults (what format 2 models did)
# and no provenance. 4: data.normalize_digits, model.word_shape_dim, interaction_dim and
# label_attention; a format 3 archive loads with their defaults (off).
FORMAT_VERSION = 4
T = TypeVar("T")


@dataclass(frozen=True)
class HFConfig:
    """Which columns of a Hugging Face `datasets` dataset hold what (`data.format: hf`).

    Rows are read from `tokens` + `tags` when the dataset has the tokens column, else from
    `text` + `entities` (a list of {"start", "end", "entity"}). Tags and intents may be names or
    `ClassLabel` ids.
    """

    subset: str = ""  # the dataset's configuration name, when it has several
    text: str = "text"
    entities: str = "entities"
    tokens: str = "tokens"
    tags: str = "tags"
    intent: str = "intent"


@dataclass(frozen=True)
class DataConfig:
    """Which data to train on and how to normalize it.

    Either `name` (a seq.in/seq.out/label dataset with split folders) or `train` (a file or
    folder in any format; `dev` and `test` optional) says where the data is.
    """

    name: str = "atis"  # a dataset under NLU_DATA_DIR, or a folder holding the splits
    train_split: str = "train"
    dev_split: str = "valid"
    test_split: str = "test"
    train: str = ""  # a data file or folder; when set, `name` and the *_split fields are unused
    dev: str = ""  # "" (and no dev folder under `name`): a split of train, see dev_fraction
    test: str = ""
    # auto: from the extension and content. hf: train/dev/test are a hub name or a local
    # .json/.jsonl/.csv/.parquet file, optionally followed by ":split" (default "train").
    format: Literal["auto", "seqio", "conll", "jsonl", "rasa", "snips", "hf"] = "auto"
    dev_fraction: float = 0.1  # share of each intent held out as dev when no dev data is given
    split_seed: int = 1  # seed of that split; fixed apart from train.seed, so runs share a dev set
    hf: HFConfig = field(default_factory=HFConfig)
    lowercase: bool = True  # the benchmarks are lower-cased; users type capitals
    # Every digit reads as 0 (words and characters alike): "flight 1215" and "flight 4021"
    # share one vector, so a number unseen in training is no unknown word.
    normalize_digits: bool = False
    min_word_count: int = 1  # rarer training words map to UNK


@dataclass(frozen=True)
class ModelConfig:
    """Architecture: embeddings -> recurrent encoder -> tag head + intent head."""

    word_dim: int = 100  # 0 turns the word embedding off
    char_dim: int = 30  # 0 turns the character encoder off
    char_filters: int = 50  # output size of the character CNN
    char_kernel: int = 3
    # Embeddings: all that are on are concatenated; at least one must be.
    word_input: Literal["embedding", "one_hot"] = "embedding"  # one_hot: 1-of-N, ignores word_dim
    pretrained_vectors: str = ""  # word2vec/GloVe text file read at training time (not at load)
    freeze_pretrained: bool = False  # keep the word embedding fixed once vectors are loaded
    char_encoder: Literal["cnn", "lstm"] = "cnn"  # lstm: BiLSTM, final states of both directions
    char_hidden: int = 25  # per direction of the character BiLSTM (it outputs 2 * char_hidden)
    word_hash_dim: int = 0  # > 0: a bag of hashed letter trigrams ("#bo", "bos", ..., "on#")
    word_hash_buckets: int = 16384  # hash buckets of the letter trigrams
    word_shape_dim: int = 0  # > 0: an embedding of the word's shape ("6:30" -> d:d, "i'd" -> x'x)
    encoder: Literal["rnn", "irnn", "lstm", "peephole_lstm", "gru"] = "lstm"
    forget_bias: float = 1.0  # initial forget-gate bias of lstm / peephole_lstm
    hidden_dim: int = 200  # per direction
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.5
    locked_dropout: bool = False  # one dropout mask per sentence, shared by all time steps
    tag_head: Literal["crf", "softmax"] = "crf"
    # How training computes the CRF's likelihood: as scaled matrix products (5x faster on a
    # CPU) or by pytorch-crf's log-space recursion; the same numbers (nlu.modules.crf).
    crf_likelihood: Literal["scaled", "pytorch-crf"] = "scaled"
    constrained_decoding: bool = False  # never decode O -> I-x or B-x -> I-y
    intent_pooling: Literal["max", "mean", "last", "attention"] = "max"
    # "token": an intent distribution at every token, trained on the utterance's intent, and the
    # utterance's intent from them by `token_intent_vote` (Stack-Propagation); the pooling is
    # then unused. The intent context (slot_intent_dim) reads each token's own distribution.
    intent_level: Literal["utterance", "token"] = "utterance"
    # "average": the mean of the tokens' log-probabilities; "vote": each token's argmax is a
    # vote, and the mean probability one more (which breaks ties and keeps a distribution).
    token_intent_vote: Literal["average", "vote"] = "average"
    intent_weight: float = 1.0  # joint loss = slot loss + intent_weight * intent loss
    intent_parts: bool = False  # score "a#b" intent labels from a and b (see IntentParts)
    intent_label_smoothing: float = 0.0  # in [0, 1): the intent loss's target spreads this mass
    attention_heads: int = 0  # > 0: a self-attention block with this many heads after the encoder
    # > 0: a self-attention branch of this size over the token embeddings, beside the encoder,
    # its output concatenated to the encoder's states (Stack-Propagation's).
    attention_branch_dim: int = 0
    slot_intent_dim: int = 0  # > 0: the embedded intent distribution joins each token's features
    # > 0: an intent <-> slot co-interaction block of this size (DCA-Net's): slot and intent
    # streams, each reading its label embeddings, then each attending to the other.
    interaction_dim: int = 0
    # Each token attends to slot-label embeddings; what it reads joins the tag head's input.
    label_attention: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the Lightning Trainer options that pass straight through."""

    seed: int = 1
    batch_size: int = 32
    lr: float = 0.002
    weight_decay: float = 0.01
    max_epochs: int = 30
    patience: int = 8  # epochs without dev improvement before stopping
    monitor: Literal["sentence_accuracy", "slot_f1", "intent_accuracy"] = "sentence_accuracy"
    gradient_clip: float = 5.0  # max gradient norm (or value); 0 turns clipping off
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"
    word_dropout: float = 0.0  # replace a training word by UNK with this probability
    # > 0: also replace a word seen c times in training by UNK with probability a / (a + c),
    # so rare words (codes, numbers) teach the UNK vector what unseen ones look like.
    rare_word_unk: float = 0.0
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"  # decay to lr_final * lr
    lr_final: float = 0.05
    ema_decay: float = 0.0  # > 0: evaluate and export an exponential moving average of weights
    # Fit the intent confidences' temperature on dev after training (nlu.eval.calibration).
    calibrate_intent: bool = True
    num_threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    # Lightning's: where and on how many processes to train. `batch_size` is per process, so the
    # global batch is batch_size * devices * num_nodes (README, distributed training).
    accelerator: str = "cpu"
    devices: int | str | list[int] = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    progress_bar: bool = True  # on a terminal; otherwise (or false) one line an epoch
    tensorboard: bool = False  # also log to runs/<run>/tensorboard (needs the tensorboard package)


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run: what data, which model, how to train it, and where to write it."""

    name: str = "atis_bilstm_crf"
    runs_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint))
    if origin is list:
        return f"a list, each {_describe(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, found {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in hints:
            raise ValueError(
                f"unknown key {prefix}{key!s}; valid keys: {', '.join(prefix + v for v in valid)}"
            )
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{prefix}{key}.")
        elif not _type_ok(value, hint):
            raise ValueError(f"{prefix}{key}: expected {_describe(hint)}, found {value!r}")
        else:
            kwargs[key] = float(value) if hint is float else value
    return cls(**kwargs)


def apply_override(data: dict[str, Any], override: str) -> None:
    """Set `key.sub=value` in a nested dict; the value is read as YAML (`3`, `true`, `gru`)."""
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ValueError(f"expected an override of the form key.sub=value, found {override!r}")
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {override!r}: {part} is not a section")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(value, str):
        # YAML 1.1 reads "1e-3" as a string; a number is what anyone typing it means.
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    node[leaf] = value


def config_from_dict(
    data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Validated config from a nested dict plus `key.sub=value` overrides."""
    data = dict(data)
    data.pop("format_version", None)
    for override in overrides:
        apply_override(data, override)
    return _build(ExperimentConfig, data, "")


def _read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML config file; errors name the file (and line)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{path}{line}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections, found {type(data).__name__}")
    return data


def load_config(
    path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> ExperimentConfig:
    """Read a YAML experiment file (or the defaults when `path` is None) and apply overrides.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad YAML, an unknown key or a value of the wrong type; the message says which.
    """
    data = _read_yaml(Path(path)) if path is not None else {}
    try:
        return config_from_dict(data, overrides)
    except ValueError as e:
        raise ValueError(f"{path}: {e}" if path is not None else str(e)) from None


def dump_config(config: ExperimentConfig) -> str:
    """YAML text of a config, with its format version."""
    return yaml.safe_dump({"format_version": FORMAT_VERSION, **config.to_dict()}, sort_keys=False)


def load_section(
    cls: type[T], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> T:
    """Read a YAML file into another config dataclass `cls` (all fields defaulted), as
    `load_config` does for experiments: unknown keys and wrong types fail with what is valid.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad YAML, an unknown key or a value of the wrong type; the message says which.
    """
    data = _read_yaml(Path(path)) if path is not None else {}
    try:
        for override in overrides:
            apply_override(data, override)
        return _build(cls, data, "")
    except ValueError as e:
        raise ValueError(f"{path}: {e}" if path is not None else str(e)) from None
