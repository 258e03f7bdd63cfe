"""`nlu`: train, evaluate and use joint intent + slot models.

Only typer and the standard library load here, so `nlu --help` is instant; each command imports
what it needs when it runs.
"""

from __future__ import annotations

import sys

import typer

from cli.analyze import app as analyze_app
from cli.calibrate import calibrate
from cli.compare import compare
from cli.data import app as data_app
from cli.evaluate import evaluate
from cli.export import export
from cli.serve import serve
from cli.shell import shell
from cli.tag import tag
from cli.train import train

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Joint intent detection and slot filling for dialogue systems.",
)
for command in (train, evaluate, calibrate, compare, tag, shell, serve, export):
    app.command()(command)
app.add_typer(data_app, name="data")
app.add_typer(analyze_app, name="analyze")

# The extra of `pip install 'nlu[EXTRA]'` that brings each optional top-level module.
EXTRAS = {
    "torch": "torch",
    "torchcrf": "torch",
    "onnx": "torch",
    "pytorch_lightning": "train",
    "lightning_fabric": "train",
    "datasets": "train",
    "fastapi": "serve",
    "uvicorn": "serve",
    "matplotlib": "report",
    "tensorboard": "tensorboard",
}


def main() -> None:
    """`nlu`: the app, with a missing optional package named in one line with its extra."""
    try:
        app()
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        print(
            f"error: this needs {top}, which comes with the {EXTRAS[top]!r} extra: "
            f"pip install 'nlu[{EXTRAS[top]}]'",
            file=sys.stderr,
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
