"""`nlu data convert|validate|stats|fetch`: read, check, convert and download training data.

Every command is a thin wrapper: it calls one function of `nlu.data.formats`, `nlu.data.validate`,
`nlu.data.stats` or `nlu.data.fetch` (imported inside the command) and prints what it returns.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from cli._output import fail, user_errors

app = typer.Typer(
    no_args_is_help=True,
    help="Convert, check and describe training data; download the ATIS and SNIPS benchmarks.",
)

FROM_HELP = "Input format: auto (from extension and content), seqio, conll, jsonl, rasa, snips, hf."
NOTES_SHOWN = 10
# nlu.schema.INTENT_SEPARATOR is the default; here as a literal so that --help imports no nlu.
SeparatorOption = Annotated[
    str,
    typer.Option(
        help="What joins the intents of a message with several (ATIS and the Mix sets: #; "
        "Rasa: +); empty: labels are never split."
    ),
]


@contextlib.contextmanager
def _notes() -> Iterator[None]:
    """Print what the readers repaired or skipped as `note:` lines on stderr."""
    from nlu.data.readers import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        yield
    notes = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    for note in notes[:NOTES_SHOWN]:
        print(f"note: {note}", file=sys.stderr)
    if len(notes) > NOTES_SHOWN:
        more = len(notes) - NOTES_SHOWN
        print(f"note: {more} more; `nlu data validate` lists them all", file=sys.stderr)
    for w in caught:
        if not issubclass(w.category, DataWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@app.command()
def convert(
    source: Annotated[str, typer.Argument(help="File or folder to read.")],
    target: Annotated[Path, typer.Argument(help="File (or folder, for seqio) to write.")],
    to: Annotated[
        str | None,
        typer.Option(help="Output format: jsonl, conll, seqio or rasa (default: from TARGET)."),
    ] = None,
    from_: Annotated[str, typer.Option("--from", help=FROM_HELP)] = "auto",
) -> None:
    """Convert data between formats; nothing is written unless all of it reads and converts."""
    from nlu.data.formats import EXTENSIONS, WRITABLE, read_examples, write_examples

    fmt = to or (EXTENSIONS.get(target.suffix.lower()) if target.suffix else "seqio")
    if fmt not in WRITABLE:
        raise fail(f"{target}: expected --to with one of {', '.join(WRITABLE)}, found {fmt!r}")
    with user_errors(), _notes():
        examples = read_examples(source, from_)
        write_examples(examples, fmt, target)
    plural = "" if len(examples) == 1 else "s"
    typer.echo(f"{len(examples)} utterance{plural}: {source} -> {target} ({fmt})")


def _expand(paths: list[str], fmt: str) -> list[str]:
    from nlu.data.splits import split_paths

    if fmt == "hf":
        return paths
    return [str(p) for path in paths for p in split_paths(path)]


@app.command()
def validate(
    paths: Annotated[
        list[str],
        typer.Argument(help="Training data first, then dev/test; a dataset folder gives all."),
    ],
    from_: Annotated[str, typer.Option("--from", help=FROM_HELP)] = "auto",
    limit: Annotated[int, typer.Option(help="Findings shown per kind; 0 shows all.")] = 20,
    intent_separator: SeparatorOption = "#",
) -> None:
    """Check data: errors exit 1; warnings (repairs, conflicts, overlap) exit 0."""
    from collections import Counter

    from nlu.data.validate import validate as run_validation

    with user_errors():
        result = run_validation(_expand(paths, from_), from_, separator=intent_separator)
    shown: Counter[tuple[str, str]] = Counter()
    for f in result.findings:
        shown[f.level, f.kind] += 1
        if not limit or shown[f.level, f.kind] <= limit:
            typer.echo(f"{f.level}: {f.message}")
    for (level, kind), n in shown.items():
        if limit and n > limit:
            typer.echo(f"... {n - limit} more {kind} {level}s (--limit 0 shows all)")
    read = ", ".join(f"{path} {n}" for path, n in result.files.items())
    typer.echo(f"utterances: {read}")
    if any(max(sizes, default=1) > 1 for sizes in result.intents_per_utterance.values()):
        typer.echo("intents per utterance: " + "; ".join(
            f"{path} {_sizes(sizes)}" for path, sizes in result.intents_per_utterance.items()
        ))  # fmt: skip
    typer.echo(f"{_tally(result.errors, 'error')}, {_tally(result.warnings, 'warning')}")
    if result.errors:
        raise typer.Exit(code=1)


def _sizes(sizes) -> str:
    """ "1: 300, 2: 120, 3: 12" for utterances by their number of intents."""
    return ", ".join(f"{n}: {c}" for n, c in sorted(sizes.items()))


def _tally(findings: list, word: str) -> str:
    from collections import Counter

    kinds = Counter(f.kind for f in findings)
    detail = f" ({', '.join(f'{k} {n}' for k, n in kinds.most_common())})" if kinds else ""
    return f"{len(findings)} {word}{'' if len(findings) == 1 else 's'}{detail}"


@app.command()
def stats(
    paths: Annotated[
        list[str],
        typer.Argument(help="Training data first, then dev/test; a dataset folder gives all."),
    ],
    from_: Annotated[str, typer.Option("--from", help=FROM_HELP)] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    intent_separator: SeparatorOption = "#",
) -> None:
    """Utterances, tokens, intents (and how many a message carries), slot types, OOV rate
    against train and a length histogram."""
    from nlu.data.formats import read_examples
    from nlu.data.stats import dataset_stats

    with user_errors(), _notes():
        paths = _expand(paths, from_)
        examples = [(p, read_examples(p, from_)) for p in paths]
        result = dataset_stats(examples, intent_separator)
    if as_json:
        typer.echo(json.dumps([s.to_dict() for s in result], indent=2))
        return
    typer.echo(_render_stats(result))


def _render_stats(result: list) -> str:
    from collections import Counter

    names = ["/".join(Path(s.path).parts[-2:]) for s in result]
    width = max(12, *(len(n) for n in names)) + 2
    head = ("utterances", "tokens", "words", "max len", "intents", "slot types")
    lines = [f"{'':<{width}}" + "".join(f"{h:>12}" for h in head) + "  OOV tokens"]
    for name, s in zip(names, result):
        oov = "-" if s.oov_rate is None else f"{s.oov_rate:.2f}% ({s.oov_words} words)"
        cells = (s.utterances, s.tokens, s.words, s.max_length, len(s.intents), len(s.slots))
        lines.append(f"{name:<{width}}" + "".join(f"{c:>12}" for c in cells) + f"  {oov}")
    tables = [("intent", [s.intents for s in result])]
    if any(max(s.intents_per_utterance, default=1) > 1 for s in result):
        sizes = [Counter({str(n): c for n, c in s.intents_per_utterance.items()}) for s in result]
        tables += [("intents per utterance", sizes),
                   ("single intent", [s.single_intents for s in result])]  # fmt: skip
    tables.append(("slot type", [s.slots for s in result]))
    for title, counters in tables:
        lines += ["", _counts_table(title, names, counters)]
    lines += ["", _histogram(names, [s.lengths for s in result])]
    return "\n".join(lines)


def _counts_table(title: str, names: list[str], counters: list) -> str:
    labels = sorted(set().union(*counters), key=lambda k: (-sum(c[k] for c in counters), k))
    width = max(len(title), *(len(k) for k in labels), 8) + 2
    cell = max(14, *(len(n) for n in names)) + 2
    lines = [f"{title:<{width}}" + "".join(f"{n:>{cell}}" for n in names)]
    lines += [f"{k:<{width}}" + "".join(f"{c[k]:>{cell}}" for c in counters) for k in labels]
    return "\n".join(lines)


def _histogram(names: list[str], lengths: list) -> str:
    from nlu.data.stats import LENGTH_BIN

    bins = sorted(set().union(*lengths))
    peak = max((lengths[0][b] for b in bins), default=1) or 1
    cell = max(14, *(len(n) for n in names)) + 2
    lines = [f"{'tokens':<10}" + "".join(f"{n:>{cell}}" for n in names) + "  " + names[0]]
    for b in bins:
        bar = "#" * max(1 if lengths[0][b] else 0, round(40 * lengths[0][b] / peak))
        label = f"{b}-{b + LENGTH_BIN - 1}"
        lines.append(f"{label:<10}" + "".join(f"{c[b]:>{cell}}" for c in lengths) + f"  {bar}")
    return "\n".join(lines)


@app.command()
def fetch(
    name: Annotated[str, typer.Argument(help="atis or snips.")],
    to: Annotated[Path, typer.Option(help="Folder to put the <name>/ folder in.")] = Path("data"),
    source: Annotated[
        str | None, typer.Option(help="Base URL of a mirror laid out as <split>/<file>.")
    ] = None,
) -> None:
    """Download the public ATIS or SNIPS splits (Goo et al. 2018) as seq.in / seq.out / label."""
    from nlu.data.fetch import fetch as run_fetch

    with user_errors():
        counts = run_fetch(name, to, source)
    split_counts = ", ".join(f"{split} {n}" for split, n in counts.items())
    typer.echo(f"{name}: {split_counts} utterances in {to / name}")
