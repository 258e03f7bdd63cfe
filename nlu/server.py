"""HTTP server for chatbot backends, shaped like Rasa's NLU server.

    POST /model/parse   {"text": "..."}          -> the parse (Rasa `/model/parse` JSON)
    POST /parse/batch   {"texts": ["...", ...]}  -> {"results": [parse, ...]}
    GET  /health                                  -> {"status": "ok"}
    GET  /model                                   -> what the model is and how it scored
    GET  /docs                                    -> OpenAPI documentation

Imported only by `nlu serve` (and tests): FastAPI stays off the `nlu tag` path.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import multiprocessing
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from nlu.config import FORMAT_VERSION
from nlu.parser import Parser
from nlu.tags import split_tag


@dataclass(frozen=True)
class ServerSettings:
    """Limits and options of the server."""

    max_text_length: int = 2000  # characters; longer texts get 413
    max_batch_texts: int = 256  # texts in one /parse/batch request; more get 413
    token: str | None = None  # bearer token; None leaves the server open
    micro_batch: bool = False  # gather concurrent /model/parse requests into one forward pass
    micro_batch_size: int = 64
    micro_batch_wait_ms: float = 0.0  # 0: a batch is whatever queued while the last one ran


@dataclass(frozen=True)
class WorkerSpec:
    """What each process of `nlu serve --workers N` loads, passed through the environment
    (uvicorn starts the workers by importing an app factory, with no arguments)."""

    model: str
    threads: int
    precision: str | None
    settings: ServerSettings
    backend: str = "auto"

    ENV = "NLU_SERVE_WORKER"

    def export(self) -> None:
        value = {**asdict(self), "settings": asdict(self.settings)}
        os.environ[self.ENV] = json.dumps(value)

    @classmethod
    def from_env(cls) -> WorkerSpec:
        value = json.loads(os.environ[cls.ENV])
        return cls(**{**value, "settings": ServerSettings(**value["settings"])})


def worker_app() -> FastAPI:
    """The app of one worker process of `nlu serve --workers N`."""
    spec = WorkerSpec.from_env()
    parser = Parser.load(
        spec.model, num_threads=spec.threads or None, precision=spec.precision,
        backend=spec.backend,
    )  # fmt: skip
    return create_app(parser, spec.settings)


REUSE_PORT = hasattr(socket, "SO_REUSEPORT")  # Linux, macOS and the BSDs; not Windows


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on (host, port) with SO_REUSEPORT.

    Each worker process holds one such socket on the same port, and the kernel spreads the new
    connections between them by a hash of their addresses. With one socket shared by all the
    workers (uvicorn's own `--workers`), whichever process woke first accepted a whole burst of
    connections: 31 of 32 went to one worker in one benchmark run, and p99 latency followed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _run_worker(host: str, port: int, log_level: str) -> None:
    """One process of `serve_workers`: load the model first, then listen and serve."""
    import uvicorn

    app = worker_app()  # before listening: no connection waits on a model still loading
    sock = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(app, log_level=log_level)).run(sockets=[sock])


def serve_workers(
    spec: WorkerSpec, host: str, port: int, workers: int, log_level: str = "warning"
) -> None:
    """Run `workers` server processes on one port, each with its own SO_REUSEPORT socket;
    return when they have all stopped. SIGTERM or Ctrl-C stops them all."""
    spec.export()  # read back by `worker_app` in each process
    # spawn, not fork: this process has imported torch, whose thread pools do not survive fork.
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_run_worker, args=(host, port, log_level), name=f"nlu-worker-{i}")
        for i in range(workers)
    ]

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        signal.signal(signal.SIGTERM, previous)


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: StrictStr = Field(min_length=1, description="The user's message.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    texts: list[Annotated[StrictStr, Field(min_length=1)]] = Field(
        min_length=1, description="User messages (non-empty strings), at least one."
    )


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def parse_to_json(parser: Parser, texts: list[str]) -> list[bytes]:
    """The JSON bodies of the parses of `texts`, built in the inference thread: the event loop
    only moves bytes."""
    return [encode(parse.to_dict()) for parse in parser.parse_batch(texts)]


class MicroBatcher:
    """Parses concurrent requests together: while one batch runs, the requests that arrive
    queue up, and the next batch takes them all (up to `max_size`).

    A request that finds the model idle is parsed at once, alone; under load, batches grow by
    themselves with the arrival rate. `wait_ms` > 0 also holds each batch open that long for
    more requests (more throughput per forward pass, more latency for each request).
    """

    def __init__(
        self, parser: Parser, max_size: int, wait_ms: float, run: Callable[..., Awaitable[Any]]
    ) -> None:
        self.parser = parser
        self.run = run  # runs a blocking call off the event loop
        self.max_size = max_size
        self.wait = wait_ms / 1000.0
        self.queue: asyncio.Queue[tuple[str, asyncio.Future]] = asyncio.Queue()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def parse(self, text: str) -> bytes:
        """The JSON body of the parse of `text`."""
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((text, future))
        return await future

    async def _run(self) -> None:
        while True:
            pending = [await self.queue.get()]
            if self.wait > 0 and self.queue.qsize() + 1 < self.max_size:
                await asyncio.sleep(self.wait)
            while len(pending) < self.max_size and not self.queue.empty():
                pending.append(self.queue.get_nowait())
            texts = [text for text, _ in pending]
            try:
                bodies = await self.run(parse_to_json, self.parser, texts)
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                for _, future in pending:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), body in zip(pending, bodies):
                if not future.done():  # its client may have gone
                    future.set_result(body)


def model_summary(parser: Parser) -> dict[str, Any]:
    """Name, format version, labels and training record of the served model."""
    info = parser.info
    slot_types = sorted({split_tag(t)[1] for t in parser.vocabs.tags.itos if t != "O"})
    return {
        "name": info.get("name", parser.config.name),
        "format_version": FORMAT_VERSION,
        "intents": parser.vocabs.intents.itos,
        "slot_types": slot_types,
        "training_data": info.get("data", parser.config.data.name),
        "metrics": info.get("metrics", {}),
        "created": info.get("created"),
        "quantized": parser.quantized,
        **parser.describe(),
    }


def create_app(parser: Parser, settings: ServerSettings | None = None) -> FastAPI:
    """The FastAPI application serving `parser`."""
    settings = settings or ServerSettings()
    # One thread does all model work, one request or batch after another: requests running
    # torch in many threads at once only fight over the cores (throughput fell as clients rose).
    inference = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu-inference")

    async def run(function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(inference, function, *args)

    batcher = (
        MicroBatcher(parser, settings.micro_batch_size, settings.micro_batch_wait_ms, run)
        if settings.micro_batch
        else None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The model, torch and FastAPI are loaded for good: moved out of the garbage
        # collector's reach, a full collection no longer walks them while requests wait.
        gc.freeze()
        if batcher is not None:
            batcher.start()
        yield
        if batcher is not None:
            await batcher.stop()
        inference.shutdown(wait=False)

    app = FastAPI(title="nlu", version=str(FORMAT_VERSION), lifespan=lifespan)
    bearer = HTTPBearer(auto_error=False)

    # Depends() as a default, not in Annotated: with postponed annotations FastAPI resolves
    # annotation strings in module globals, where the local `bearer` does not exist.
    async def authorize(  # async: a sync dependency would cost a thread hop per request
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if settings.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(given.encode(), settings.token.encode()):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    def check_length(text: str, field: str) -> None:
        if len(text) > settings.max_text_length:
            raise HTTPException(
                413, f"{field} has {len(text)} characters; the limit is {settings.max_text_length}"
            )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # The model failing on some input must not look like the client's fault, but it must
        # not take the server down either; say what happened in one line.
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model", dependencies=[Depends(authorize)])
    async def model() -> dict[str, Any]:
        return model_summary(parser)

    # The parse endpoints answer with JSON encoded once, by `encode`: FastAPI's response
    # serialization walks every value of the parse again, which cost more than the parse.
    @app.post("/model/parse", dependencies=[Depends(authorize)], response_class=Response)
    async def parse(request: ParseRequest) -> Response:
        check_length(request.text, "text")
        if batcher is not None:
            body = await batcher.parse(request.text)
        else:
            (body,) = await run(parse_to_json, parser, [request.text])
        return Response(body, media_type="application/json")

    @app.post("/parse/batch", dependencies=[Depends(authorize)], response_class=Response)
    async def parse_batch(request: BatchRequest) -> Response:
        if len(request.texts) > settings.max_batch_texts:
            raise HTTPException(
                413,
                f"{len(request.texts)} texts; the limit is {settings.max_batch_texts} per request",
            )
        for i, text in enumerate(request.texts):
            check_length(text, f"texts[{i}]")
        bodies = await run(parse_to_json, parser, request.texts)
        return Response(b'{"results":[' + b",".join(bodies) + b"]}", media_type="application/json")

    return app
