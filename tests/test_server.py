"""The HTTP server through FastAPI's test client: parses, limits, auth and every bad input."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from nlu.config import FORMAT_VERSION
from nlu.server import REUSE_PORT, ServerSettings, create_app, listening_socket
from tests.conftest import assert_same_parses


@pytest.fixture(scope="module", params=[False, True], ids=["direct", "micro_batch"])
def client(request, parser):
    app = create_app(
        parser, ServerSettings(max_text_length=50, max_batch_texts=3, micro_batch=request.param)
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def secured(parser):
    with TestClient(create_app(parser, ServerSettings(token="s3cret"))) as c:
        yield c


def test_parse_is_rasa_shaped(client):
    text = "Flights from Boston to London"
    response = client.post("/model/parse", json={"text": text})
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == text and body["intent"]["name"] == "flight"
    assert {e["value"] for e in body["entities"]} >= {"Boston", "London"}
    for e in body["entities"]:
        assert text[e["start"] : e["end"]] == e["value"] and e["extractor"] == "nlu"


def test_batch_matches_single(client):
    texts = ["taxi in boston", "cheapest fare to dallas"]
    batch = client.post("/parse/batch", json={"texts": texts}).json()["results"]
    singles = [client.post("/model/parse", json={"text": t}).json() for t in texts]
    assert_same_parses(batch, singles)


def test_health_model_and_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    model = client.get("/model").json()
    assert model["name"] == "tiny" and model["format_version"] == FORMAT_VERSION
    assert "flight" in model["intents"] and "toloc.city_name" in model["slot_types"]
    assert "dev" in model["metrics"] and model["quantized"] is False
    assert model["precision"] == "float32"
    assert client.get("/docs").status_code == 200
    assert "/model/parse" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(
    "body",
    [{}, {"text": ""}, {"text": 42}, {"text": None}, {"text": ["a"]}, {"txt": "hi"}, [], "hi"],
    ids=["missing", "empty", "number", "null", "list", "wrong-key", "array-body", "string-body"],
)
def test_bad_parse_input_is_422_with_a_message(client, body):
    response = client.post("/model/parse", json=body)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_invalid_json_is_422(client):
    response = client.post(
        "/model/parse", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "body", [{}, {"texts": []}, {"texts": "hi"}, {"texts": ["ok", 3]}, {"texts": ["ok", ""]}]
)
def test_bad_batch_input_is_422(client, body):
    assert client.post("/parse/batch", json=body).status_code == 422


def test_too_long_is_413(client):
    response = client.post("/model/parse", json={"text": "a" * 51})
    assert response.status_code == 413 and "limit is 50" in response.json()["detail"]
    response = client.post("/parse/batch", json={"texts": ["ok", "b" * 51]})
    assert response.status_code == 413 and "texts[1]" in response.json()["detail"]


def test_too_many_texts_is_413(client):
    response = client.post("/parse/batch", json={"texts": ["a", "b", "c", "d"]})
    assert response.status_code == 413 and "limit is 3" in response.json()["detail"]


def test_token_required_when_set(secured):
    assert secured.post("/model/parse", json={"text": "hi"}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert secured.post("/model/parse", json={"text": "hi"}, headers=wrong).status_code == 401
    assert secured.get("/model").status_code == 401
    assert secured.post("/parse/batch", json={"texts": ["hi"]}).status_code == 401
    right = {"Authorization": "Bearer s3cret"}
    assert secured.post("/model/parse", json={"text": "hi"}, headers=right).status_code == 200
    assert secured.get("/health").status_code == 200  # health checks stay open


def test_concurrent_requests_under_micro_batching(parser):
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(parser, ServerSettings(micro_batch=True, micro_batch_wait_ms=5))
    texts = [f"flights from boston to london {'x ' * (i % 3)}" for i in range(24)]
    with TestClient(app) as c:
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda t: c.post("/model/parse", json={"text": t}), texts))
    assert all(r.status_code == 200 for r in responses)
    assert [r.json()["text"] for r in responses] == texts
    expected = [p.intent for p in parser.parse_batch(texts)]
    assert [r.json()["intent"]["name"] for r in responses] == expected


def test_micro_batches_are_what_queued_while_the_last_batch_ran(parser):
    """With no gathering time, a request to an idle model runs alone; the requests that arrive
    meanwhile form the next batch, up to the size limit."""
    import asyncio
    import json
    import threading

    from nlu.server import MicroBatcher

    batches, release = [], threading.Event()

    async def scenario():
        loop = asyncio.get_running_loop()

        async def run(function, *args):
            batches.append(list(args[1]))
            await loop.run_in_executor(None, release.wait)  # the model is busy until released
            return function(*args)

        batcher = MicroBatcher(parser, max_size=3, wait_ms=0, run=run)
        batcher.start()
        first = asyncio.ensure_future(batcher.parse("a"))
        await asyncio.sleep(0.05)  # "a" is running alone
        rest = [asyncio.ensure_future(batcher.parse(t)) for t in "bcde"]
        await asyncio.sleep(0.05)
        release.set()
        bodies = await asyncio.gather(first, *rest)
        await batcher.stop()
        return [json.loads(b)["text"] for b in bodies]

    assert asyncio.run(scenario()) == list("abcde")
    assert batches == [["a"], ["b", "c", "d"], ["e"]]


def test_listening_sockets_share_a_port():
    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = listening_socket("127.0.0.1", port)  # SO_REUSEPORT: a second worker's socket
    try:
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


@pytest.mark.skipif(not REUSE_PORT, reason="needs SO_REUSEPORT")
def test_serve_with_two_workers_answers_and_stops_on_sigterm(trained, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    nlu = str(Path(sys.executable).parent / "nlu")
    args = ["serve", "--model", str(trained.model_dir), "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        server = subprocess.Popen([nlu, *args], stderr=stderr)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                    assert client.get("/health").json() == {"status": "ok"}
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}") for _ in range(8)]
        for client in clients:
            reply = client.post("/model/parse", json={"text": "taxi in dallas"})
            assert reply.status_code == 200 and reply.json()["intent"]["name"]
            client.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    # Every worker has stopped: the port can be bound again without SO_REUSEPORT.
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
