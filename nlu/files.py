"""Write files through a temporary name renamed into place, so a reader never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def _atomic(path: Path, mode: str, **kwargs: Any) -> Iterator[IO[Any]]:
    """A file opened on a temporary name beside `path`, renamed to `path` when the block ends.

    If anything fails half-way the temporary file is removed and `path` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file renamed into place."""
    path = Path(path)
    with _atomic(path, "wb") as f:
        f.write(data)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """`write_bytes_atomic` of UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_lines_atomic(path: str | os.PathLike, lines: Iterable[str]) -> Path:
    """Stream lines (each given a newline) to `path` through a temporary file renamed into place;
    for output too long to hold, such as a tagged file."""
    path = Path(path)
    with _atomic(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    return path
