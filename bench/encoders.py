"""Every encoder x tag head on ATIS and SNIPS under one fixed budget, 3 seeds each.

    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/encoders.py --workers 2
    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/encoders.py --speed  # idle machine
    NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/encoders.py --latency-from runs/encoders
    .venv/bin/python bench/encoders.py --table        # Markdown tables from the saved results

The grid: {rnn, irnn, lstm, peephole_lstm, gru} x {softmax, crf}, bidirectional, plus
unidirectional lstm and gru with the CRF head; on ATIS and SNIPS; seeds 1-3. Each run starts from
the dataset's config (`configs/<dataset>_bilstm_crf.yaml`, pinned by `GRID_BASE` to its settings
when the grid started) with only the encoder, the tag head and the direction changed, and trains
for exactly `--atis-epochs` / `--snips-epochs` epochs (early stopping off; the best dev epoch is
still the one scored). Each run is its own process with one torch thread, so
`--workers 2` keeps both cores busy without the runs fighting over them.

One JSON file per run in bench/results/encoders/; a run whose file exists is skipped, so an
interrupted grid resumes where it stopped, and a second process started beside the first takes
the jobs the first has not claimed.

The grid's own timings are taken two runs at a time, often beside other work; `--speed` times
every configuration's training again, one at a time (one epoch), into
bench/results/encoders/speed.json, and `--latency-from` times `Parser.parse` on each
configuration's trained model, one after another; the tables take their timing columns from
there.
"""

from __future__ import annotations

import argparse
import json
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

from _timing import parse_times_ms

RESULTS = Path("bench/results/encoders")
ENCODERS = ("rnn", "irnn", "lstm", "peephole_lstm", "gru")
HEADS = ("softmax", "crf")
DEFAULT_EPOCHS = {"atis": 12, "snips": 6}
# The grid's base, pinned so that later changes to the default configs do not mix two settings
# in one table: the dataset configs as they were when the grid started (commit af7a9c1).
GRID_BASE = {
    "atis": ["model.slot_intent_dim=0", "train.lr_schedule=constant"],
    "snips": [
        "model.slot_intent_dim=0",
        "model.word_hash_dim=0",
        "train.word_dropout=0.0",
        "train.lr_schedule=cosine",
    ],
}
INFERENCE_SENTENCES = 200
SPEED = RESULTS / "speed.json"  # from --speed: timings measured one configuration at a time


@dataclass(frozen=True)
class Job:
    dataset: str
    encoder: str
    head: str
    bidirectional: bool
    seed: int
    epochs: int

    @property
    def name(self) -> str:
        direction = "bi" if self.bidirectional else "uni"
        return f"{self.dataset}_{self.encoder}_{self.head}_{direction}"

    @property
    def path(self) -> Path:
        return RESULTS / f"{self.name}_seed{self.seed}.json"


def grid(datasets: list[str], seeds: list[int], epochs: dict[str, int]) -> list[Job]:
    jobs = []
    for dataset in datasets:
        for seed in seeds:
            for encoder in ENCODERS:
                for head in HEADS:
                    jobs.append(Job(dataset, encoder, head, True, seed, epochs[dataset]))
            for encoder in ("lstm", "gru"):
                jobs.append(Job(dataset, encoder, "crf", False, seed, epochs[dataset]))
    return jobs


def measure(model_dir: Path, sentences: list[str]) -> tuple[int, float]:
    """Trainable parameters of the saved model, and the median wall time of `Parser.parse`
    on one utterance at a time (after a warm-up), in ms."""
    from nlu.parser import Parser

    parser = Parser.load(model_dir, backend="torch")  # the encoder grid's figures are torch's
    params = sum(p.numel() for p in parser.model.parameters())
    times = parse_times_ms(parser, sentences, warmup=10)
    return params, statistics.median(times)


def claim(job: Job) -> bool:
    """Mark a job as taken, so that a second `bench/encoders.py` started beside this one (to use
    another core) picks other jobs. A claim left by a killed run is removed by hand."""
    job.path.parent.mkdir(parents=True, exist_ok=True)
    try:
        job.path.with_suffix(".claim").open("x").close()
    except FileExistsError:
        return False
    return True


def train_job(job: Job, runs_dir: str):  # -> nlu.training.train.TrainResult
    """Train one grid configuration with one torch thread."""
    import torch

    from nlu.config import load_config
    from nlu.training.train import train

    torch.set_num_threads(1)
    cfg = load_config(
        Path(f"configs/{job.dataset}_bilstm_crf.yaml"),
        [
            *GRID_BASE[job.dataset],
            f"name={job.name}",
            f"runs_dir={runs_dir}",
            f"model.encoder={job.encoder}",
            f"model.tag_head={job.head}",
            f"model.bidirectional={str(job.bidirectional).lower()}",
            f"train.seed={job.seed}",
            f"train.max_epochs={job.epochs}",
            f"train.patience={job.epochs}",
            "train.num_threads=1",
            "train.progress_bar=false",
        ],
    )
    return train(cfg)


def test_sentences(dataset: str) -> list[str]:
    from nlu.data.seqio import read_seqio, resolve_split

    examples = read_seqio(resolve_split(dataset, "test"))[:INFERENCE_SENTENCES]
    return [" ".join(e.tokens) for e in examples]


def run(job: Job) -> dict | None:
    """Train one cell of the grid in this (fresh) process and write its JSON."""
    if job.path.exists() or not claim(job):
        return None
    import torch

    result = train_job(job, "runs/encoders")
    test = result.reports["test"].summary()
    params, ms = measure(result.model_dir, test_sentences(job.dataset))
    row = {
        **job.__dict__,
        "slot_f1": test["slot_f1"],
        "intent_accuracy": test["intent_accuracy"],
        "sentence_accuracy": test["sentence_accuracy"],
        "best_epoch": result.best_epoch + 1,
        "epochs_run": result.epochs,
        "seconds_per_epoch": result.fit_seconds / max(1, result.epochs),
        "parameters": params,
        "inference_ms": ms,
        "torch": torch.__version__,
    }
    write_json(job.path, row)
    job.path.with_suffix(".claim").unlink()
    return row


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=2), encoding="utf-8")
    tmp.replace(path)


def read_speed() -> dict[str, dict]:
    """speed.json: per configuration name, `seconds_per_epoch` (`--speed`) and `inference_ms`
    (`--latency-from`)."""
    return json.loads(SPEED.read_text(encoding="utf-8")) if SPEED.exists() else {}


def configurations(datasets: list[str]) -> list[Job]:
    """One job per grid configuration (seed 1): what the timing passes measure."""
    return grid(datasets, [1], {"atis": 1, "snips": 1})


def epoch_seconds(job: Job) -> float:
    """One epoch of training, validation included as in the grid's runs, in this fresh
    process."""
    import tempfile

    with tempfile.TemporaryDirectory() as runs_dir:
        return train_job(job, runs_dir).fit_seconds


def speed_pass(datasets: list[str]) -> None:
    """Every grid configuration's training speed, one after the other on an otherwise idle
    machine, so that the timings compare (the grid itself runs two jobs at once, beside other
    work)."""
    context = get_context("spawn")
    timings = read_speed()
    for job in configurations(datasets):
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            seconds = pool.submit(epoch_seconds, job).result()
        timings.setdefault(job.name, {})["seconds_per_epoch"] = seconds
        print(f"{job.name}: {seconds:.1f} s / epoch", flush=True)
        write_json(SPEED, timings)


def mean_std(values: list[float], digits: int = 2) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {std:.{digits}f}"


def table() -> str:
    rows: dict[tuple, list[dict]] = {}
    timings = read_speed()
    for path in sorted(RESULTS.glob("*_seed*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        rows.setdefault((r["dataset"], r["encoder"], r["head"], r["bidirectional"]), []).append(r)
    lines = []
    for dataset in ("atis", "snips"):
        cells = [(k, v) for k, v in rows.items() if k[0] == dataset]
        if not cells:
            continue
        epochs = cells[0][1][0]["epochs"]
        lines += [
            "",
            f"**{dataset.upper()}**, {epochs} epochs, 1 torch thread per run",
            "",
            "| encoder | head | dir | seeds | slot F1 | intent acc | sentence acc | params "
            "| s / epoch | ms / utt |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        order = {e: i for i, e in enumerate(ENCODERS)}
        for (_, encoder, head, bi), runs in sorted(
            cells, key=lambda kv: (not kv[0][3], order[kv[0][1]], kv[0][2])
        ):
            name = f"{dataset}_{encoder}_{head}_{'bi' if bi else 'uni'}"
            # Missing from speed.json: the grid runs' own timings, taken under load.
            timing = {
                key: statistics.mean(r[key] for r in runs)
                for key in ("seconds_per_epoch", "inference_ms")
            }
            timing.update(timings.get(name, {}))
            lines.append(
                f"| {encoder} | {head} | {'bi' if bi else 'uni'} | {len(runs)} "
                f"| {mean_std([r['slot_f1'] for r in runs])} "
                f"| {mean_std([r['intent_accuracy'] for r in runs])} "
                f"| {mean_std([r['sentence_accuracy'] for r in runs])} "
                f"| {runs[0]['parameters']:,} "
                f"| {timing['seconds_per_epoch']:.1f} "
                f"| {timing['inference_ms']:.2f} |"
            )
    return "\n".join(lines)


def trained_latency(models_dir: Path, datasets: list[str]) -> None:
    """Parse latency of each configuration's trained model (its lowest seed found under
    `models_dir`, where the grid wrote them), one model after another, into speed.json. Trained
    models, not the one-epoch models of `--speed`: how many slots a model finds decides whether
    forward-backward runs."""
    import torch

    torch.set_num_threads(1)
    timings = read_speed()
    for job in configurations(datasets):
        found = list(models_dir.glob(f"{job.name}-*-seed*/model"))
        if not found:
            print(f"{job.name}: no trained model under {models_dir}", flush=True)
            continue
        model = min(found, key=lambda p: int(p.parent.name.rsplit("seed", 1)[1]))
        _, ms = measure(model, test_sentences(job.dataset))
        timings.setdefault(job.name, {}).update(inference_ms=ms, inference_model=model.parent.name)
        print(f"{job.name}: {ms:.2f} ms ({model.parent.name})", flush=True)
        write_json(SPEED, timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["atis", "snips"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--atis-epochs", type=int, default=DEFAULT_EPOCHS["atis"])
    parser.add_argument("--snips-epochs", type=int, default=DEFAULT_EPOCHS["snips"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--table", action="store_true", help="only print the tables")
    parser.add_argument(
        "--speed", action="store_true", help="only time each configuration, one at a time"
    )
    parser.add_argument(
        "--latency-from",
        type=Path,
        help="only re-measure parse latency on the trained models under this runs directory",
    )
    args = parser.parse_args()
    if args.latency_from is not None:
        trained_latency(args.latency_from, args.datasets)
        return
    if args.table:
        print(table())
        return
    if args.speed:
        speed_pass(args.datasets)
        return
    epochs = {"atis": args.atis_epochs, "snips": args.snips_epochs}
    jobs = [j for j in grid(args.datasets, args.seeds, epochs) if not j.path.exists()]
    print(f"{len(jobs)} runs to do", flush=True)
    # A fresh process per run: no state (seeds, threads, Lightning) leaks from one to the next.
    context = get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(run, job): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                row = future.result()
            except Exception as e:  # one failed cell must not lose the others
                print(f"{job.name} seed {job.seed}: FAILED {e!r}", flush=True)
                continue
            if row is None:
                continue  # done or taken by another process
            print(
                f"{job.name} seed {job.seed}: {row['slot_f1']:.2f} / "
                f"{row['intent_accuracy']:.2f} / {row['sentence_accuracy']:.2f} "
                f"({row['seconds_per_epoch']:.1f} s/epoch)",
                flush=True,
            )
    print(table())


if __name__ == "__main__":
    main()
