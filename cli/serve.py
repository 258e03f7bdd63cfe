"""`nlu serve [--model DIR] [--host 127.0.0.1] [--port 5005]`."""

from __future__ import annotations

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
            "Python's GIL. Default: one per core, at most 4."
        ),
    ] = None,
) -> None:
    """Serve a model over HTTP: POST /model/parse, POST /parse/batch, GET /health, GET /model."""
    import uvicorn

    from nlu.parser import MAX_BATCH_WORKERS, Parser, cores
    from nlu.server import REUSE_PORT, ServerSettings, WorkerSpec, create_app, serve_workers

    if workers is None:
        workers = min(cores(), MAX_BATCH_WORKERS)
    if workers < 1:
        raise fail(f"--workers: expected at least 1, got {workers}")
    settings = ServerSettings(
        max_text_length=max_text_length,
        max_batch_texts=max_batch,
        token=token,
        micro_batch=micro_batch,
        micro_batch_wait_ms=micro_batch_wait_ms,
    )
    model_dir = default_model(model)
    precision = chosen_precision(precision, quantize)
    with user_errors():
        # Loaded here even with several workers: a bad model fails in one line, before serving.
        parser = Parser.load(
            model_dir, num_threads=threads or None, precision=precision, backend=backend
        )
    typer.echo(f"serving {parser.config.name} on http://{host}:{port} (docs at /docs)", err=True)
    if workers == 1:
        uvicorn.run(create_app(parser, settings), host=host, port=port, log_level="warning")
        return
    spec = WorkerSpec(str(model_dir), threads, precision, settings, parser.backend)
    del parser  # each worker loads its own copy; the parent only supervises them
    if REUSE_PORT:
        serve_workers(spec, host, port, workers)
        return
    spec.export()  # the worker processes read it back in `nlu.server.worker_app`
    uvicorn.run(  # one socket shared by the workers: connections may split unevenly
        "nlu.server:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="warning",
    )
