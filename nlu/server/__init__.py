"""HTTP server for chatbot backends, shaped like Rasa's NLU server, that keeps serving.

    POST /model/parse   {"text": "..."}          -> the parse (Rasa `/model/parse` JSON)
    POST /parse/batch   {"texts": ["...", ...]}  -> {"results": [parse, ...]}
    GET  /model                                   -> what the model is and how it scored
    PUT  /model         {"model": "dir"}          -> load another model in every worker
    GET  /health                                  -> alive (200), with the queue and workers
    GET  /ready                                   -> 200 serving, 503 loading or draining
    GET  /metrics                                 -> Prometheus metrics, summed over workers
    GET  /docs                                    -> OpenAPI documentation

A full wait queue answers 503 with Retry-After at once. The rooms:
- `app.py`: the FastAPI app of one process (endpoints, auth, limits, request ids, access log);
- `scheduler.py`: the bounded wait queue and micro-batches in front of the inference thread;
- `metrics.py`: the Prometheus metrics (prometheus-client, multiprocess mode);
- `worker.py`: one worker process: its socket, its draining uvicorn server, its pipe up;
- `supervisor.py`: the parent of the workers (restarts, reloads, SIGTERM);
- `board.py`: the counters they share.

Imported only by `nlu serve` (and tests): FastAPI stays off the `nlu tag` path.
"""

from nlu.server.app import ModelOptions, ServerSettings, create_app
from nlu.server.worker import REUSE_PORT, WorkerSpec, listening_socket

__all__ = [
    "REUSE_PORT",
    "ModelOptions",
    "ServerSettings",
    "WorkerSpec",
    "create_app",
    "listening_socket",
]
