"""`train(cfg)`: fit a joint model with Lightning and export the best epoch as a model directory."""

from __future__ import annotations

import importlib.util
import json
import logging
import signal
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from nlu import archive
from nlu.analysis.curves import write_curves
from nlu.config import ExperimentConfig, ModelConfig, dump_config
from nlu.eval.calibration import calibrate_intents
from nlu.eval.evaluate import evaluate
from nlu.eval.metrics import Report, known_words
from nlu.export import write_onnx
from nlu.files import write_text_atomic
from nlu.model import JointModel, build_model
from nlu.modules.vectors import read_vectors
from nlu.parser import Parser
from nlu.schema import Example
from nlu.training import provenance
from nlu.training.callbacks import (
    CHECKPOINT,
    EpochCheckpoint,
    EpochLine,
    KeepBest,
    checkpoint_epoch,
)
from nlu.training.datamodule import NLUDataModule
from nlu.training.module import NLUModule, rare_word_probs
from nlu.training.rundir import (
    RUN_CONFIG,
    earlier_log,
    is_worker_process,
    merge_log,
    new_run_dir,
    point_latest,
)
from nlu.vocab import Vocabs

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Where a run was written and how its best epoch scored."""

    run_dir: Path
    model_dir: Path
    best_epoch: int
    seconds: float  # the whole call up to the export: data, training, calibration, scoring
    fit_seconds: float  # the training loop alone
    epochs: int  # epochs run (fewer than max_epochs when early stopping fired)
    reports: dict[str, Report]  # split name -> report of the exported model
    # False in the DDP processes other than rank 0, which neither score nor write anything.
    rank_zero: bool = True


class TrainingStopped(Exception):
    """The run was stopped by a signal (Ctrl-C or SIGTERM) and can go on with `--resume`."""

    def __init__(self, signum: int, run_dir: Path, epochs_done: int) -> None:
        self.signum, self.run_dir, self.epochs_done = signum, run_dir, epochs_done
        name = signal.Signals(signum).name
        super().__init__(
            f"stopped by {name} after {epochs_done} whole epoch(s); go on with: "
            f"nlu train --resume {run_dir}"
        )

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process a signal ended."""
        return 128 + self.signum


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Hush Lightning for the fit; the caller's warning filters and logger levels come back
    as they were, since a library should not change them for the rest of the process."""
    loggers = [
        logging.getLogger(name)
        for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric")
    ]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        # Lightning logs tips about GPUs and workers that do not apply on a CPU-only machine.
        for logger in loggers:
            logger.setLevel(logging.WARNING)
        # torch 2.13 deprecates a pytree class that Lightning 2.6 still uses; not the user's
        # concern.
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning
        )
        # A resumed run's CSV logger warns that it will start its file afresh: `merge_log`
        # puts the earlier epochs' rows back.
        warnings.filterwarnings("ignore", message=r"Experiment logs directory .* not empty")
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


@dataclass(frozen=True)
class Fitted:
    """What `fit` hands to the later steps."""

    model: JointModel  # the best dev epoch's weights, on the CPU, in eval mode
    data: NLUDataModule  # set up: vocabs, splits, dev examples
    run_dir: Path
    best_epoch: int
    epochs: int  # epochs run (fewer than max_epochs when early stopping fired)
    fit_seconds: float  # the training loop alone
    pretrained: dict[str, object]  # how much of model.pretrained_vectors was found; {} without
    writes: bool  # rank 0: the one process that writes the run directory
    provenance: list[dict[str, object]]  # one record a start or resume (nlu.training.provenance)


def train(cfg: ExperimentConfig, resume: Path | None = None) -> TrainResult:
    """Train on `cfg.data` and keep the best dev epoch (`fit`), fit its intent temperature on dev
    (`calibrate`), score it on dev and test (`score`), and write the run directory (`export`)."""
    _check_tensorboard(cfg)
    started = time.perf_counter()
    fitted = fit(cfg, resume)
    if not fitted.writes:  # a DDP process other than rank 0: rank 0 scores and exports
        return TrainResult(
            fitted.run_dir, fitted.run_dir / "model", fitted.best_epoch, 0.0,
            fitted.fit_seconds, fitted.epochs, {}, rank_zero=False,
        )  # fmt: skip
    parser = Parser(fitted.model, fitted.data.vocabs, cfg)
    temperature = None
    if cfg.train.calibrate_intent:
        temperature = calibrate(parser, fitted.model, fitted.data.dev_examples)
    reports = score(parser, fitted.data)
    seconds = time.perf_counter() - started
    model_dir = export(cfg, fitted, _info(cfg, fitted, reports, temperature, seconds))
    return TrainResult(
        fitted.run_dir,
        model_dir,
        fitted.best_epoch,
        seconds,
        fitted.fit_seconds,
        fitted.epochs,
        reports,
    )


def fit(cfg: ExperimentConfig, resume: Path | None = None) -> Fitted:
    """Build the data, model and Lightning trainer of `cfg`, make the run directory (rank 0),
    train, and load the weights of the best dev epoch into the model.

    With `resume`, a run directory whose training was stopped: training goes on from its last
    checkpoint (the end of its last whole epoch) in that directory.

    Raises:
        TrainingStopped: Ctrl-C or SIGTERM stopped the training.
    """
    with _quiet_lightning():
        pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        data = NLUDataModule(cfg.data, batch_size=cfg.train.batch_size, seed=cfg.train.seed)
        data.setup("fit")
        model = build_model(cfg.model, data.vocabs)
        pretrained = _load_pretrained(model, cfg.model, data.vocabs)
        module = _module(cfg, model, data)
        run_dir, epoch = _run_dir(cfg, resume)
        checkpoint = None if epoch is None else str(run_dir / "checkpoints" / CHECKPOINT)
        log = run_dir / "logs" / "metrics.csv"
        earlier = [] if epoch is None else earlier_log(log, epoch)
        keep_best = KeepBest(f"val_{cfg.train.monitor}")
        trainer = _trainer(cfg, run_dir, keep_best)
        history = []
        if not is_worker_process():
            resumed = None if epoch is None else epoch + 1
            entry = provenance.record(cfg, trainer.world_size, resumed)
            history = provenance.append(run_dir, entry)
        fit_started = time.perf_counter()
        try:
            # The checkpoint holds RNG states (NumPy's, Python's), which torch's weights-only
            # loader refuses; it is this run's own file (the README: resume only your runs).
            trainer.fit(module, datamodule=data, ckpt_path=checkpoint, weights_only=False)
        except SystemExit as stop:
            raise _stopped(stop, run_dir) from None
        fit_seconds = time.perf_counter() - fit_started
        if trainer.is_global_zero:
            merge_log(log, earlier)
    if keep_best.state is not None:
        model.load_state_dict(keep_best.state)
    return Fitted(
        model=model.cpu().eval(),
        data=data,
        run_dir=run_dir,
        best_epoch=keep_best.best_epoch,
        epochs=trainer.current_epoch,
        fit_seconds=fit_seconds,
        pretrained=pretrained,
        writes=trainer.is_global_zero,
        provenance=history,
    )


def _run_dir(cfg: ExperimentConfig, resume: Path | None) -> tuple[Path, int | None]:
    """The run directory, and the epoch its checkpoint ends, to go on from (None: start).

    A new run records its resolved config there first, which `--resume` reads back. A resumed
    run stopped before its first epoch ended starts again, in place.
    """
    if resume is not None:
        return resume, checkpoint_epoch(resume / "checkpoints")
    run_dir = new_run_dir(cfg)
    if not is_worker_process():
        write_text_atomic(run_dir / RUN_CONFIG, dump_config(cfg))
    return run_dir, None


def _stopped(stop: SystemExit, run_dir: Path) -> BaseException:
    """What a `SystemExit` out of Lightning's fit means: a signal's stop, or itself."""
    if isinstance(stop, SIGTERMException):
        signum = signal.SIGTERM
    elif isinstance(stop.__context__, KeyboardInterrupt):
        signum = signal.SIGINT
        # Lightning ignores further Ctrl-C while it shuts down, and leaves it so.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    else:
        return stop
    epoch = checkpoint_epoch(run_dir / "checkpoints")
    return TrainingStopped(signum, run_dir, 0 if epoch is None else epoch + 1)


def calibrate(parser: Parser, model: JointModel, examples: Sequence[Example]) -> float:
    """Fit the intent temperature on held-out `examples` through `parser`; set it in `model`,
    the one `export` saves, as well as in the parser's, which scores the splits. Return it.

    The two need not be one object: an int8 Parser quantizes a copy of the model it is given.
    """
    temperature = calibrate_intents(parser, examples)  # sets it in parser.model
    model.intent_head.temperature.fill_(temperature)
    return temperature


def score(parser: Parser, data: NLUDataModule) -> dict[str, Report]:
    """Reports of the dev split and, where the dataset has one, the test split, with slot F1
    on spans holding a word unseen in training beside the rest."""
    known = known_words(e.tokens for e in data.splits.train)
    reports = {"dev": evaluate(parser, data.dev_examples, known=known)}
    if data.splits.test is not None:  # a dataset without a test split is fine
        reports["test"] = evaluate(parser, data.splits.test, known=known)
    return reports


def served_scores(model_dir: Path, data: NLUDataModule) -> dict[str, object] | None:
    """The scores of the model as `nlu.load(model_dir)` serves it with no options (the ONNX
    graph at the precision its export chose on dev), where that is not the torch float32
    model that `score` scored: int8 can tag a few sentences differently."""
    parser = Parser.load(model_dir)
    if parser.backend == "torch" and parser.precision == "float32":
        return None
    reports = score(parser, data)
    return {
        "backend": parser.backend,
        "precision": parser.precision,
        "metrics": {split: r.summary() for split, r in reports.items()},
    }


def export(cfg: ExperimentConfig, fitted: Fitted, info: dict[str, object]) -> Path:
    """Write the run directory: model/ (see `nlu.archive`, and its ONNX graph, `nlu.export`)
    and metrics.json, both with `info` (metrics.json also with `served_scores`),
    dev_split.txt when dev was split from train, curves.png, and point runs/latest at it.
    Return model/'s path.

    Only rank 0 writes; the other ranks get the same path back.
    """
    model_dir = fitted.run_dir / "model"
    if not fitted.writes:
        return model_dir

    # With the ONNX graphs, which `nlu.load` then runs without torch, and the precision they
    # parse at by default, chosen on dev (`nlu.export`).
    archive.save(model_dir, cfg, fitted.data.vocabs, fitted.model, info,
                 extra=lambda directory: write_onnx(fitted.model, directory,
                                                   fitted.data.dev_examples))  # fmt: skip
    served = served_scores(model_dir, fitted.data)
    if served is not None:
        info = {**info, "served": served}
    write_text_atomic(fitted.run_dir / "metrics.json", json.dumps(info, indent=2))
    splits = fitted.data.splits
    if splits.dev_split is not None:  # which examples were held out, by file:line
        write_text_atomic(
            fitted.run_dir / "dev_split.txt", "".join(e.source + "\n" for e in splits.dev)
        )
    point_latest(fitted.run_dir)
    write_curves(fitted.run_dir)  # curves.png from logs/metrics.csv
    return model_dir


def _info(
    cfg: ExperimentConfig,
    fitted: Fitted,
    reports: dict[str, Report],
    temperature: float | None,
    seconds: float,
) -> dict[str, object]:
    """The run's info.json (also its metrics.json): data, best epoch, time and scores."""
    info: dict[str, object] = {
        "name": cfg.name,
        "created": datetime.now().isoformat(timespec="seconds"),
        "data": cfg.data.train or cfg.data.name,
        "best_epoch": fitted.best_epoch,
        "epochs_run": fitted.epochs,
        "train_seconds": round(seconds, 1),
        "metrics": {split: r.summary() for split, r in reports.items()},
    }
    if temperature is not None:
        info["intent_temperature"] = round(temperature, 4)
    if fitted.pretrained:
        info["pretrained_vectors"] = fitted.pretrained
    if fitted.data.splits.dev_split is not None:
        info["dev_split"] = fitted.data.splits.dev_split
    info["provenance"] = fitted.provenance
    return info


def _module(cfg: ExperimentConfig, model: JointModel, data: NLUDataModule) -> NLUModule:
    return NLUModule(
        model,
        data.vocabs.tags.itos,
        data.vocabs.intents.itos,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        word_dropout=cfg.train.word_dropout,
        unk_probs=rare_word_probs(data.word_counts(), cfg.train.rare_word_unk),
        lr_schedule=cfg.train.lr_schedule,
        lr_final=cfg.train.lr_final,
        ema_decay=cfg.train.ema_decay,
        seed=cfg.train.seed,
    )


def _trainer(cfg: ExperimentConfig, run_dir: Path, keep_best: KeepBest) -> pl.Trainer:
    # Lightning's bar on a terminal; in a log (CI, cluster jobs, nohup), one line an epoch.
    bar = cfg.train.progress_bar and sys.stdout.isatty()
    return pl.Trainer(
        max_epochs=cfg.train.max_epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        num_nodes=cfg.train.num_nodes,
        strategy=cfg.train.strategy,
        # BucketBatchSampler shares the batches among the processes itself.
        use_distributed_sampler=False,
        precision=cfg.train.precision,
        gradient_clip_val=cfg.train.gradient_clip or None,
        gradient_clip_algorithm=cfg.train.gradient_clip_algorithm,
        callbacks=[
            EarlyStopping(
                keep_best.monitor,
                mode="max",
                patience=cfg.train.patience,
                check_on_train_epoch_end=False,  # after dev scoring, also in a resumed run
            ),
            keep_best,
            *([] if bar else [EpochLine(keep_best)]),
            EpochCheckpoint(run_dir / "checkpoints"),
        ],
        logger=_loggers(cfg, run_dir),
        enable_checkpointing=True,  # EpochCheckpoint stands in for the default one
        enable_progress_bar=bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=20,
        default_root_dir=str(run_dir),
    )


def _check_tensorboard(cfg: ExperimentConfig) -> None:
    # Checked before any work, so a missing package does not cost a data load first.
    if cfg.train.tensorboard and not any(
        importlib.util.find_spec(name) for name in ("tensorboard", "tensorboardX")
    ):
        raise ValueError(
            "train.tensorboard is true: expected the tensorboard package, found it not installed "
            "(pip install 'nlu[tensorboard]', or set train.tensorboard=false)"
        )


def _loggers(cfg: ExperimentConfig, run_dir: Path) -> list[Logger]:
    """Lightning's CSV log in run_dir/logs (always: curves.png is drawn from it), TensorBoard's
    in run_dir/tensorboard when `train.tensorboard` is on."""
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="", version="logs")]
    if cfg.train.tensorboard:
        loggers.append(TensorBoardLogger(save_dir=str(run_dir), name="", version="tensorboard"))
    return loggers


def _load_pretrained(model: JointModel, cfg: ModelConfig, vocabs: Vocabs) -> dict[str, object]:
    """Initialise the word embedding from `cfg.pretrained_vectors`; return how much it covered.

    Only training reads the vector file: the saved weights carry the rows it gave.
    """
    if not cfg.pretrained_vectors:
        if cfg.freeze_pretrained:
            raise ValueError(
                "model.freeze_pretrained is true: expected a model.pretrained_vectors file, "
                "found none"
            )
        return {}
    if cfg.word_input != "embedding" or cfg.word_dim == 0:
        raise ValueError(
            "model.pretrained_vectors: expected word_input 'embedding' and word_dim > 0, found "
            f"word_input {cfg.word_input!r} and word_dim {cfg.word_dim}"
        )
    pretrained = read_vectors(cfg.pretrained_vectors, vocabs.words, cfg.word_dim)
    model.embedding.load_pretrained(pretrained, freeze=cfg.freeze_pretrained)
    _log.info(
        "%s: %d of %d vocabulary words found",
        pretrained.path,
        pretrained.num_found,
        pretrained.num_words,
    )
    return {
        "path": pretrained.path,
        "words_found": pretrained.num_found,
        "words": pretrained.num_words,
        "frozen": cfg.freeze_pretrained,
    }
