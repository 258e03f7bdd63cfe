"""Download the public ATIS and SNIPS splits (Goo et al. 2018) in the seq.in / seq.out / label
layout, for users with internet access."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from nlu.data.seqio import SEQIO_FILES, read_seqio

# The split of "Slot-Gated Modeling for Joint Slot Filling and Intent Prediction" (NAACL 2018),
# which the literature reports on; the repository serves each file as plain text.
_BASE_URL = "https://raw.githubusercontent.com/MiuLab/SlotGated-SLU/master/data"
SOURCES = {"atis": f"{_BASE_URL}/atis", "snips": f"{_BASE_URL}/snips"}
SPLITS = ("train", "valid", "test")


def fetch(
    name: str, to: str | Path, source: str | None = None, timeout: float = 60.0
) -> dict[str, int]:
    """Download dataset `name` into `to/name/<split>/{seq.in,seq.out,label}`.

    Every file is downloaded and read back with `read_seqio` in a temporary folder, which is
    renamed into place only when all splits read cleanly: a failure leaves nothing behind.

    Args:
        name: a key of `SOURCES`.
        to: the folder to put the dataset folder in.
        source: another base URL with the same layout (`<source>/<split>/<file>`), e.g. a mirror.
        timeout: seconds to wait for each file.

    Returns:
        Utterances per split.

    Raises:
        ValueError: an unknown name, an existing target folder, a failed download or bad data.
    """
    if name not in SOURCES:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(SOURCES)}")
    to = Path(to)
    target = to / name
    if target.exists():
        raise ValueError(f"{target}: expected no folder there, found one; remove it or use --to")
    base = (source or SOURCES[name]).rstrip("/")
    to.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=to))
    try:
        counts = {}
        for split in SPLITS:
            (tmp / split).mkdir()
            for file in SEQIO_FILES:
                (tmp / split / file).write_bytes(_download(f"{base}/{split}/{file}", timeout))
            counts[split] = len(read_seqio(tmp / split))
        tmp.chmod(0o755)  # mkdtemp makes it private
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        raise ValueError(f"{url}: expected the file, found HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ValueError(f"{url}: expected the file, found no connection ({reason})") from None
