"""The FastAPI application of one server process: endpoints, auth, limits, request ids, the
access log and metrics. See the package docstring for the endpoints."""

from __future__ import annotations

import asyncio
import gc
import hmac
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from nlu.config import FORMAT_VERSION
from nlu.parser import Parser
from nlu.server.metrics import ServerMetrics
from nlu.server.scheduler import DEFAULT_MAX_QUEUE, RETRY_AFTER_S, Overloaded, Scheduler
from nlu.tags import split_tag

ACCESS_LOGS = ("off", "text", "json")
access_logger = logging.getLogger("nlu.access")
# A probe parse that a reloaded model must answer before it serves (any text will do).
PROBE_TEXT = "book a flight to boston tomorrow"


@dataclass(frozen=True)
class ServerSettings:
    """Limits and options of the server."""

    max_text_length: int = 2000  # characters; longer texts get 413
    max_batch_texts: int = 256  # texts in one /parse/batch request; more get 413
    token: str | None = None  # bearer token; None leaves the server open (and PUT /model shut)
    micro_batch: bool = False  # gather concurrent /model/parse requests into one forward pass
    micro_batch_size: int = 64
    micro_batch_wait_ms: float = 0.0  # 0: a batch is whatever queued while the last one ran
    max_queue: int = DEFAULT_MAX_QUEUE  # texts that may wait in a worker; more get 503
    model_root: str | None = None  # PUT /model loads only directories under it
    access_log: str = "off"  # "text" or "json" (JSON lines) on the nlu.access logger


@dataclass(frozen=True)
class ModelOptions:
    """How the server loads a model, the first and every later one (`PUT /model`, SIGHUP)."""

    threads: int | None = 1
    precision: str | None = None  # None: each model's own default
    backend: str = "auto"

    def load(self, path: str | os.PathLike) -> Parser:
        """Load the model at `path` and check that it parses; raises on any fault (a missing
        or corrupt directory, weights that do not fit, a graph that does not run)."""
        parser = Parser.load(path, self.threads, self.precision, backend=self.backend)
        parser.parse_batch([PROBE_TEXT])
        return parser


class ReloadFailed(Exception):
    """A model could not be loaded or did not parse: the old one still serves."""


class Workers(Protocol):
    """How an app reaches the worker processes beside it: `nlu serve`'s supervisor
    (`nlu.server.worker`), or, for an app on its own, nothing but itself (`Alone`)."""

    async def reload(self, path: Path) -> dict[str, Any]:
        """This worker serves `path` now: load it in the others too, and say how many of all
        the workers switched (`workers`, `switched`, and whatever else the PUT should tell)."""
        ...

    def status(self) -> dict[str, Any]:
        """The worker processes, for `GET /health`."""
        ...


class Alone:
    """The workers of an app that runs on its own: this one, which has switched already."""

    async def reload(self, path: Path) -> dict[str, Any]:
        return {"workers": 1, "switched": 1}

    def status(self) -> dict[str, Any]:
        return {}


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: StrictStr = Field(min_length=1, description="The user's message.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    texts: list[Annotated[StrictStr, Field(min_length=1)]] = Field(
        min_length=1, description="User messages (non-empty strings), at least one."
    )


class ModelRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    model: StrictStr = Field(
        min_length=1,
        alias="model_file",  # Rasa's name for it
        description="A model directory under the server's model root (absolute, or relative "
        "to the root).",
    )


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
        "path": info.get("model_dir"),
        **parser.describe(),
    }


class ServerState:
    """What the process's HTTP layer and its server share: readiness, draining, requests in
    flight (the worker's uvicorn server reads them to drain, see `nlu.server.worker`)."""

    def __init__(self) -> None:
        self.ready = False  # the model is loaded and the scheduler runs
        self.draining = False  # shutting down: answer what is in flight, take nothing new
        self.in_flight = 0
        self.on_change: Callable[[], None] = lambda: None  # told when in_flight changes
        self.on_ready: Callable[[bool], None] = lambda ready: None  # told when ready changes
        self.loop: asyncio.AbstractEventLoop | None = None  # the app's, once it runs
        self.started = threading.Event()  # set when the app runs: for other threads to wait


def resolve_model(path: str, root: str | None) -> Path:
    """The model directory a PUT /model names, which must lie under `root` once symbolic links
    and ".." are resolved; raises PermissionError otherwise."""
    if root is None:
        raise PermissionError("PUT /model needs a model root (nlu serve --model-root)")
    base = Path(root).resolve()
    target = (base / path).resolve()  # an absolute `path` replaces `base`
    if not target.is_relative_to(base):
        raise PermissionError(f"{path}: outside the model root")
    return target


def create_app(
    parser: Parser,
    settings: ServerSettings | None = None,
    options: ModelOptions | None = None,
    workers: Workers | None = None,
    metrics: ServerMetrics | None = None,
    state: ServerState | None = None,
) -> FastAPI:
    """The FastAPI application serving `parser`.

    `options` say how `PUT /model` loads another model (default: as `parser` was loaded);
    `workers`, how a reload reaches the other worker processes (default: there are none).
    """
    settings = settings or ServerSettings()
    if options is None:
        chosen = parser.describe()["precision_chosen_by"] == "asked"
        options = ModelOptions(parser.num_threads, parser.precision if chosen else None,
                               parser.backend)  # fmt: skip
    metrics = metrics or ServerMetrics()
    state = state or ServerState()
    scheduler = Scheduler(
        parser,
        max_queue=settings.max_queue,
        micro_batch=settings.micro_batch,
        max_batch=settings.micro_batch_size,
        wait_ms=settings.micro_batch_wait_ms,
        metrics=metrics,
    )
    reload_lock = asyncio.Lock()

    async def swap(path: Path) -> str:
        """Load and check `path` beside the serving model, then swap it in between batches."""
        try:
            fresh = await asyncio.get_running_loop().run_in_executor(None, options.load, path)
        except Exception as e:  # noqa: BLE001 - any fault refuses the model, in one line
            metrics.reloads.labels("refused").inc()
            raise ReloadFailed(f"{path}: {type(e).__name__}: {e}") from None
        scheduler.swap(fresh)
        metrics.reloads.labels("switched").inc()
        return str(path)

    workers = workers or Alone()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # The model and the libraries are loaded for good: moved out of the garbage
        # collector's reach, a full collection no longer walks them while requests wait.
        gc.freeze()
        state.loop = asyncio.get_running_loop()
        scheduler.start()
        state.ready = True
        state.on_ready(True)
        state.started.set()
        yield
        state.ready = False
        state.on_ready(False)
        await scheduler.stop()

    app = FastAPI(title="nlu", version=str(FORMAT_VERSION), lifespan=lifespan)
    app.state.scheduler = scheduler
    app.state.swap = swap
    app.state.server = state
    app.state.metrics = metrics
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

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> Response:
        return Response(_busy_body(str(exc)), 503, _BUSY_HEADERS, "application/json")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Alive: this process answers. Also the queue and, under `nlu serve`, the workers."""
        return {
            "status": "ok",
            "pid": os.getpid(),
            "queue": {
                "waiting": scheduler.waiting,
                "limit": scheduler.max_queue,
                "shed": scheduler.shed,
            },  # fmt: skip
            **workers.status(),
        }

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Ready: the model is loaded and the process is not shutting down (else 503)."""
        is_ready = state.ready and not state.draining
        reason = "ready" if is_ready else ("draining" if state.draining else "loading")
        return JSONResponse({"ready": is_ready, "status": reason}, 200 if is_ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/model", dependencies=[Depends(authorize)])
    async def model() -> dict[str, Any]:
        return model_summary(scheduler.parser)

    @app.put("/model", dependencies=[Depends(authorize)])
    async def replace_model(request: ModelRequest) -> JSONResponse:
        """Load another model in every worker and swap it in between batches (Rasa's
        PUT /model). Needs the bearer token and a model directory under the model root."""
        if settings.token is None:
            raise HTTPException(403, "PUT /model needs the server to run with a token (--token)")
        try:
            path = resolve_model(request.model, settings.model_root)
        except PermissionError as e:
            raise HTTPException(403, str(e)) from None
        if reload_lock.locked():
            raise HTTPException(409, "another model reload is running")
        async with reload_lock:
            started = time.perf_counter()
            try:
                # Checked here first: a bad model is refused before any worker is touched.
                await swap(path)
                result = await workers.reload(path)
            except ReloadFailed as e:
                raise HTTPException(422, f"model refused, the old one still serves: {e}") from None
        status = 200 if result["switched"] == result["workers"] else 500
        took = round(time.perf_counter() - started, 3)
        return JSONResponse({"model": str(path), **result, "seconds": took}, status)

    # The parse endpoints answer with JSON encoded once, in the inference thread: FastAPI's
    # response serialization walks every value of the parse again, which cost more than the
    # parse.
    @app.post("/model/parse", dependencies=[Depends(authorize)], response_class=Response)
    async def parse(request: ParseRequest) -> Response:
        check_length(request.text, "text")
        (body,) = await scheduler.parse([request.text])
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
        bodies = await scheduler.parse(request.texts)
        return Response(b'{"results":[' + b",".join(bodies) + b"]}", media_type="application/json")

    if settings.access_log not in ACCESS_LOGS:
        raise ValueError(f"access_log: expected one of {list(ACCESS_LOGS)}, found "
                         f"{settings.access_log!r}")  # fmt: skip
    app.add_middleware(RequestLayer, state=state, metrics=metrics, scheduler=scheduler,
                       log=settings.access_log)  # fmt: skip
    return app


# Paths as the metrics label them: the routes, and "other" for the rest (a label per URL a
# scanner tries would grow without bound).
ROUTES = frozenset({"/model/parse", "/parse/batch", "/model", "/health", "/ready", "/metrics"})
PARSE_PATHS = frozenset({"/model/parse", "/parse/batch"})


class RequestLayer:
    """ASGI middleware around the app: a request id on every response (the client's
    X-Request-ID when it sends a sane one), latency and status metrics, the access log, the
    count of requests in flight, and `Connection: close` while draining, so that keep-alive
    clients move to another worker. Plain ASGI: FastAPI's `BaseHTTPMiddleware` costs a task
    and a queue per request."""

    def __init__(
        self,
        app: Any,
        state: ServerState,
        metrics: ServerMetrics,
        scheduler: Scheduler,
        log: str,
    ) -> None:
        self.app, self.state, self.metrics, self.log = app, state, metrics, log
        self.scheduler = scheduler

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500
        state = self.state
        state.in_flight += 1
        state.on_change()

        started_response = False

        async def send_with_id(message: dict) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if state.draining:
                    headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            scheduler = self.scheduler
            if scope["path"] in PARSE_PATHS and scheduler.waiting >= scheduler.max_queue:
                # Full: refused before FastAPI reads and checks the body, which under overload
                # would cost more than the parses it lets through.
                await _busy(send_with_id, str(scheduler.refuse()))
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as e:  # noqa: BLE001
            # The model failing on some input must not look like the client's fault, but it
            # must not take the server down either: 500, what happened in one line, and the
            # request id (answered here rather than by Starlette's outermost handler).
            if started_response:
                raise
            body = json.dumps({"detail": f"internal error: {type(e).__name__}"}).encode()
            headers = [(b"content-type", b"application/json"),
                       (b"content-length", str(len(body)).encode())]  # fmt: skip
            await send_with_id({"type": "http.response.start", "status": 500, "headers": headers})
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            state.in_flight -= 1
            state.on_change()
            seconds = time.perf_counter() - started
            path = scope["path"] if scope["path"] in ROUTES else "other"
            self.metrics.answered(path, status, seconds)
            if self.log != "off":
                self._log(scope, request_id, status, seconds)

    def _log(self, scope: dict, request_id: str, status: int, seconds: float) -> None:
        _log_access(self.log, scope, request_id, status, seconds)


def _log_access(log: str, scope: dict, request_id: str, status: int, seconds: float) -> None:
    """One line of the access log, as text or as JSON."""
    client = scope.get("client")
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "request_id": request_id,
        "method": scope["method"],
        "path": scope["path"],
        "status": status,
        "ms": round(seconds * 1000, 3),
        "pid": os.getpid(),
        "client": f"{client[0]}:{client[1]}" if client else None,
    }
    if log == "json":
        access_logger.info(json.dumps(entry, separators=(",", ":")))
    else:
        access_logger.info(
            "%(client)s %(method)s %(path)s %(status)s %(ms)sms id=%(request_id)s", entry
        )


_BUSY_HEADERS = {"Retry-After": str(RETRY_AFTER_S)}


def early_refusal(app: FastAPI, log: str) -> Callable[[dict], bytes | None]:
    """For a worker's HTTP protocol (`nlu.server.worker`): given a request's scope as soon as
    its headers are read, the whole 503 response (bytes) when it is a parse request and the
    queue is full, else None. Refused there, a request costs no ASGI task, no FastAPI and no
    body parsing: under four times the load a worker can parse, that work alone took more
    than the worker's core."""
    scheduler: Scheduler = app.state.scheduler
    state: ServerState = app.state.server
    metrics: ServerMetrics = app.state.metrics

    def refuse(scope: dict) -> bytes | None:
        if scope["path"] not in PARSE_PATHS or scheduler.waiting < scheduler.max_queue:
            return None
        request_id = _request_id(scope)
        body = _busy_body(str(scheduler.refuse()))
        closing = b"connection: close\r\n" if state.draining else b""
        head = (
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nretry-after: %d\r\nx-request-id: %s\r\n%s\r\n"
            % (len(body), RETRY_AFTER_S, request_id.encode(), closing)
        )
        metrics.answered(scope["path"], 503, 0.0)
        if log != "off":
            _log_access(log, scope, request_id, 503, 0.0)
        return head + body

    return refuse


def _busy_body(reason: str) -> bytes:
    return json.dumps({"detail": f"busy, retry: {reason}"}).encode()


async def _busy(send: Callable, reason: str) -> None:
    """Answer 503 with Retry-After, in plain ASGI."""
    body = _busy_body(reason)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"retry-after", str(RETRY_AFTER_S).encode())]  # fmt: skip
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_id(scope: dict) -> str:
    """The client's X-Request-ID if it is short and printable, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            if 0 < len(value) <= 128 and value.isascii() and value.decode().isprintable():
                return value.decode()
            break
    return uuid.uuid4().hex
