"""`train(cfg)`: fit a joint model with Lightning and export the best epoch as a model directory."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from nlu import archive
from nlu.analysis.curves import write_curves
from nlu.config import ExperimentConfig, ModelConfig
from nlu.eval.calibration import calibrate_intents
from nlu.eval.evaluate import evaluate
from nlu.eval.metrics import Report
from nlu.files import write_text_atomic
from nlu.model import JointModel, build_model
from nlu.modules.vectors import read_vectors
from nlu.parser import Parser
from nlu.training.datamodule import NLUDataModule
from nlu.training.module import NLUModule, rare_word_probs
from nlu.vocab import Vocabs

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Where a run was written and how its best epoch scored."""

    run_dir: Path
    model_dir: Path
    best_epoch: int
    seconds: float  # the whole call: data, training, export and scoring
    fit_seconds: float  # the training loop alone
    epochs: int  # epochs run (fewer than max_epochs when early stopping fired)
    reports: dict[str, Report]  # split name -> report of the exported model


class KeepBest(Callback):
    """Keep a CPU copy of the weights of the best dev epoch (no checkpoint files, no pickle).

    On a tie the later epoch wins: it has trained longer for the same dev score.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.best: float | None = None
        self.best_epoch = -1
        self.state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        if self.best is None or value >= self.best:
            self.best, self.best_epoch = value, trainer.current_epoch
            self.state = {
                k: v.detach().cpu().clone() for k, v in pl_module.model.state_dict().items()
            }


def _is_worker_process() -> bool:
    # Lightning's DDP launcher starts ranks > 0 as new processes with these set; only rank 0
    # writes the run directory.
    return any(int(os.environ.get(name, "0")) > 0 for name in ("LOCAL_RANK", "NODE_RANK"))


def _new_run_dir(cfg: ExperimentConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.runs_dir) / f"{cfg.name}-{stamp}-seed{cfg.train.seed}"
    if _is_worker_process():
        return base
    run_dir, k = base, 1
    while run_dir.exists():
        k += 1
        run_dir = base.with_name(f"{base.name}-{k}")
    run_dir.mkdir(parents=True)
    return run_dir


def _point_latest(run_dir: Path) -> None:
    """Make `runs/latest` a relative symlink to `run_dir`, swapped in atomically."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_dir.name, target_is_directory=True)
    os.replace(tmp, link)


def _quiet_lightning() -> None:
    # Lightning logs tips about GPUs and workers that do not apply on a CPU-only machine.
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # torch 2.13 deprecates a pytree class that Lightning 2.6 still uses; not the user's concern.
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning
    )


def train(cfg: ExperimentConfig) -> TrainResult:
    """Train on `cfg.data`, pick the best dev epoch, export it and score it on dev and test."""
    _quiet_lightning()
    _check_tensorboard(cfg)
    started = time.perf_counter()
    pl.seed_everything(cfg.train.seed, workers=True, verbose=False)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    data = NLUDataModule(cfg.data, batch_size=cfg.train.batch_size, seed=cfg.train.seed)
    data.setup("fit")
    vocabs = data.vocabs
    model = build_model(cfg.model, vocabs)
    coverage = _load_pretrained(model, cfg.model, vocabs)
    module = NLUModule(
        model,
        vocabs.tags.itos,
        vocabs.intents.itos,
        lr=cfg.train.lr,
        weight_decay=cfg.train.weight_decay,
        word_dropout=cfg.train.word_dropout,
        unk_probs=rare_word_probs(data.word_counts(), cfg.train.rare_word_unk),
        lr_schedule=cfg.train.lr_schedule,
        lr_final=cfg.train.lr_final,
        ema_decay=cfg.train.ema_decay,
    )
    run_dir = _new_run_dir(cfg)
    monitor = f"val_{cfg.train.monitor}"
    keep_best = KeepBest(monitor)
    trainer = pl.Trainer(
        max_epochs=cfg.train.max_epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        strategy=cfg.train.strategy,
        precision=cfg.train.precision,
        gradient_clip_val=cfg.train.gradient_clip or None,
        gradient_clip_algorithm=cfg.train.gradient_clip_algorithm,
        callbacks=[EarlyStopping(monitor, mode="max", patience=cfg.train.patience), keep_best],
        logger=_loggers(cfg, run_dir),
        enable_checkpointing=False,
        enable_progress_bar=cfg.train.progress_bar,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=20,
        default_root_dir=str(run_dir),
    )
    fit_started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    fit_seconds = time.perf_counter() - fit_started
    if keep_best.state is not None:
        model.load_state_dict(keep_best.state)
    model = model.cpu().eval()
    parser = Parser(model, vocabs, cfg)
    temperature = None
    if cfg.train.calibrate_intent:
        temperature = calibrate_intents(parser, data.dev_examples)
    reports = _score_splits(parser, cfg, data)
    seconds = time.perf_counter() - started
    info = {
        "name": cfg.name,
        "created": datetime.now().isoformat(timespec="seconds"),
        "data": cfg.data.train or cfg.data.name,
        "best_epoch": keep_best.best_epoch,
        "epochs_run": trainer.current_epoch,
        "train_seconds": round(seconds, 1),
        "metrics": {split: r.summary() for split, r in reports.items()},
    }
    if temperature is not None:
        info["intent_temperature"] = round(temperature, 4)
    if coverage:
        info["pretrained_vectors"] = coverage
    if data.splits.dev_split is not None:
        info["dev_split"] = data.splits.dev_split
    model_dir = run_dir / "model"
    if trainer.is_global_zero:
        archive.save(model_dir, cfg, vocabs, model, info)
        write_text_atomic(run_dir / "metrics.json", json.dumps(info, indent=2))
        if data.splits.dev_split is not None:  # which examples were held out, by file:line
            dev_sources = "".join(e.source + "\n" for e in data.splits.dev)
            write_text_atomic(run_dir / "dev_split.txt", dev_sources)
        _point_latest(run_dir)
        write_curves(run_dir)  # curves.png from logs/metrics.csv
    return TrainResult(
        run_dir,
        model_dir,
        keep_best.best_epoch,
        seconds,
        fit_seconds,
        trainer.current_epoch,
        reports,
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


def _score_splits(parser: Parser, cfg: ExperimentConfig, data: NLUDataModule) -> dict[str, Report]:
    reports = {"dev": evaluate(parser, data.dev_examples)}
    if data.splits.test is not None:  # a dataset without a test split is fine
        reports["test"] = evaluate(parser, data.splits.test)
    return reports
