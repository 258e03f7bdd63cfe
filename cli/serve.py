"""`nlu serve [--model DIR] [--host 127.0.0.1] [--port 5005]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import (
    BackendOption,
    ModelDir,
    PrecisionOption,
    Quantize,
    chosen_precision,
    default_model,
    fail,
    user_errors,
)

TOKEN_ENV = "NLU_SERVER_TOKEN"
DEFAULT_MAX_QUEUE = 16  # nlu.server.scheduler's; here so that --help imports no server
DEFAULT_GRACE_S = 20.0  # nlu.server.worker's


def serve(
    model: ModelDir = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 5005,
    token: Annotated[
        str | None,
        typer.Option(envvar=TOKEN_ENV, help=f"Require this bearer token (or set {TOKEN_ENV})."),
    ] = None,
    max_text_length: Annotated[
        int, typer.Option(help="Longest text accepted (characters).")
    ] = 2000,
    max_batch: Annotated[int, typer.Option(help="Most texts in one /parse/batch request.")] = 256,
    micro_batch: Annotated[
        bool,
        typer.Option(
            help="Gather concurrent /model/parse requests into one forward pass (one client "
            "waits no longer; 32 clients get 3x the requests a second)."
        ),
    ] = True,
    micro_batch_wait_ms: Annotated[
        float,
        typer.Option(
            help="Hold each micro-batch open this long (ms); 0 takes the requests that queued "
            "while the previous batch ran."
        ),
    ] = 0.0,
    threads: Annotated[
        int,
        typer.Option(
            help="Torch threads of the inference thread (0 keeps torch's default). One is "
            "fastest for one-utterance requests: a second only waits on the first."
        ),
    ] = 1,
    precision: PrecisionOption = None,
    quantize: Quantize = False,
    backend: BackendOption = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes, each with its own copy of the model and its own "
            "SO_REUSEPORT socket on the port (the kernel spreads connections between them). "
            "Two use both cores of a 2-core machine; one process is held to about one core by "
            "Python's GIL. A worker that dies is started again. Default: one per core, at "
            "most 4."
        ),
    ] = None,
    max_queue: Annotated[
        int,
        typer.Option(
            help="Texts that may wait in each worker; requests beyond get 503 with "
            "Retry-After at once."
        ),
    ] = DEFAULT_MAX_QUEUE,
    grace_period: Annotated[
        float,
        typer.Option(help="On SIGTERM, seconds that requests in flight may take to finish."),
    ] = DEFAULT_GRACE_S,
    model_root: Annotated[
        Path | None,
        typer.Option(
            help="PUT /model loads model directories under this one only (default: the "
            "directory that holds --model). PUT /model also needs --token."
        ),
    ] = None,
    access_log: Annotated[
        str, typer.Option(help="Access log on stderr: off, text, or json (JSON lines).")
    ] = "off",
) -> None:
    """Serve a model over HTTP: POST /model/parse and /parse/batch, GET and PUT /model,
    GET /health, /ready and /metrics. SIGTERM drains; SIGHUP reloads the model."""
    import logging

    import uvicorn

    from nlu.parser import MAX_BATCH_WORKERS, cores
    from nlu.server import REUSE_PORT, ModelOptions, ServerSettings, WorkerSpec, create_app
    from nlu.server.app import ACCESS_LOGS

    if workers is None:
        workers = min(cores(), MAX_BATCH_WORKERS)
    if workers < 1:
        raise fail(f"--workers: expected at least 1, got {workers}")
    if max_queue < 1:
        raise fail(f"--max-queue: expected at least 1, got {max_queue}")
    if access_log not in ACCESS_LOGS:
        raise fail(f"--access-log: expected one of {list(ACCESS_LOGS)}, got {access_log!r}")
    model_dir = default_model(model)
    settings = ServerSettings(
        max_text_length=max_text_length,
        max_batch_texts=max_batch,
        token=token,
        micro_batch=micro_batch,
        micro_batch_wait_ms=micro_batch_wait_ms,
        max_queue=max_queue,
        model_root=str(model_root if model_root is not None else Path(model_dir).parent),
        access_log=access_log,
    )
    options = ModelOptions(threads or None, chosen_precision(precision, quantize), backend)
    with user_errors():
        # Loaded here even with several workers: a bad model fails in one line, before serving.
        parser = options.load(model_dir)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    typer.echo(f"serving {parser.config.name} on http://{host}:{port} (docs at /docs)", err=True)
    if not REUSE_PORT:  # Windows: one process, unsupervised
        uvicorn.run(create_app(parser, settings, options), host=host, port=port,
                    log_level="warning")  # fmt: skip
        return
    del parser  # each worker loads its own copy; the parent only supervises them
    from nlu.server.supervisor import Supervisor

    spec = WorkerSpec(str(model_dir), options, settings, grace_period)
    status = Supervisor(spec, host, port, workers).run()
    if status:
        raise typer.Exit(code=status)
