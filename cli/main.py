"""`nlu`: train, evaluate and use joint intent + slot models.

Only typer and the standard library load here, so `nlu --help` is instant; each command imports
what it needs when it runs.
"""

from __future__ import annotations

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

if __name__ == "__main__":
    app()
