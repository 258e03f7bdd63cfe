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
import hmac
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
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
    micro_batch_wait_ms: float = 2.0


class ParseRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: StrictStr = Field(min_length=1, description="The user's message.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    texts: list[Annotated[StrictStr, Field(min_length=1)]] = Field(
        min_length=1, description="User messages (non-empty strings), at least one."
    )


class MicroBatcher:
    """Collects concurrent requests for a few milliseconds, then parses them in one batch."""

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

    async def parse(self, text: str) -> dict[str, Any]:
        future = asyncio.get_running_loop().create_future()
        await self.queue.put((text, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            deadline = loop.time() + self.wait
            while len(pending) < self.max_size:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), timeout))
                except asyncio.TimeoutError:
                    break
            texts = [text for text, _ in pending]
            try:
                parses = await self.run(self.parser.parse_batch, texts)
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                for _, future in pending:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), parse in zip(pending, parses):
                if not future.done():
                    future.set_result(parse.to_dict())


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

    @app.post("/model/parse", dependencies=[Depends(authorize)])
    async def parse(request: ParseRequest) -> dict[str, Any]:
        check_length(request.text, "text")
        if batcher is not None:
            return await batcher.parse(request.text)
        result = await run(parser.parse, request.text)
        return result.to_dict()

    @app.post("/parse/batch", dependencies=[Depends(authorize)])
    async def parse_batch(request: BatchRequest) -> dict[str, Any]:
        if len(request.texts) > settings.max_batch_texts:
            raise HTTPException(
                413,
                f"{len(request.texts)} texts; the limit is {settings.max_batch_texts} per request",
            )
        for i, text in enumerate(request.texts):
            check_length(text, f"texts[{i}]")
        parses = await run(parser.parse_batch, request.texts)
        return {"results": [p.to_dict() for p in parses]}

    return app
