"""nlu: joint intent detection and slot filling for dialogue systems.

Importing this package is cheap on purpose: the heavy parts load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from nlu.parser import Parser


def load(path: str, **kwargs) -> Parser:
    """Load a trained model directory and return a `Parser` (see `nlu.parser.Parser.load`)."""
    from nlu.parser import Parser

    return Parser.load(path, **kwargs)
