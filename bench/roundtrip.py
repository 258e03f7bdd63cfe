"""Round trips seqio -> FORMAT -> seqio on the real splits: are the files byte-identical?

NLU_DATA_DIR=../shared/datasets .venv/bin/python bench/roundtrip.py --data atis snips

Each split is read from its seq.in / seq.out / label folder, written as FORMAT, read back, and
written as seqio again, all through files in a temporary folder. A file that is not
byte-identical is checked again with each line's whitespace collapsed; the canonical output is
then sent round once more to show it is a fixed point. For rasa (which holds text, not tokens)
the table counts the utterances whose tokens survive the tokenizer instead.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from nlu.data.formats import read_examples, write_examples
from nlu.data.seqio import SEQIO_FILES, read_seqio, resolve_split


def round_trip(folder: Path, fmt: str, work: Path) -> tuple[Path, list, float]:
    started = time.perf_counter()
    examples = read_seqio(folder)
    middle = write_examples(examples, fmt, work / f"data.{fmt}")
    back = read_examples(middle, fmt)
    out = write_examples(back, "seqio", work / f"{fmt}-seqio")
    return out, back, time.perf_counter() - started


def compare(original: Path, copy: Path) -> tuple[int, int, int]:
    """(files identical, lines that differ, of which only in whitespace)."""
    identical = differ = whitespace = 0
    for name in SEQIO_FILES:
        a = (original / name).read_bytes()
        b = (copy / name).read_bytes()
        identical += a == b
        for x, y in zip(a.decode().splitlines(), b.decode().splitlines()):
            if x != y:
                differ += 1
                whitespace += x.split() == y.split()
    return identical, differ, whitespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["atis", "snips"])
    parser.add_argument("--formats", nargs="+", default=["jsonl", "conll", "rasa"])
    args = parser.parse_args()
    print(
        "| split | via | utterances | examples equal | files byte-identical | lines differing "
        "(whitespace only) | canonical is a fixed point | s |"
    )
    print("|---|---|---:|---|---:|---:|---|---:|")
    for dataset in args.data:
        for split in ("train", "valid", "test"):
            folder = resolve_split(dataset, split)
            original = read_seqio(folder)
            for fmt in args.formats:
                with tempfile.TemporaryDirectory() as tmp:
                    out, back, seconds = round_trip(folder, fmt, Path(tmp) / "1")
                    again, _, _ = round_trip(out, fmt, Path(tmp) / "2")
                    identical, differ, whitespace = compare(folder, out)
                    fixed = compare(out, again)[0] == len(SEQIO_FILES)
                key = [(e.tokens, e.tags, e.intent) for e in original]
                if fmt == "rasa":  # grouped by intent, so compare as multisets; bytes do not apply
                    kept = sum(
                        (
                            Counter(key) & Counter((e.tokens, e.tags, e.intent) for e in back)
                        ).values()
                    )
                    equal, identical, differ = f"{kept}/{len(original)}", "-", "-"
                else:
                    equal = "yes" if back == original else "NO"
                    identical, differ = f"{identical}/3", f"{differ} ({whitespace})"
                print(
                    f"| {dataset}/{split} | {fmt} | {len(original)} | {equal} | {identical} "
                    f"| {differ} | {'yes' if fixed else 'NO'} | {seconds:.2f} |"
                )


if __name__ == "__main__":
    main()
