"""The HTTP server through FastAPI's test client: parses, limits, auth and every bad input."""

import time

import pytest
from fastapi.testclient import TestClient

from nlu.config import FORMAT_VERSION
from nlu.server import ServerSettings, create_app, listening_socket
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
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["queue"]["limit"] >= 1
    assert client.get("/ready").json() == {"ready": True, "status": "ready"}
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


def run_scheduler(parser, scenario, **options):
    """Run `scenario(scheduler, release)` in an event loop, with the inference thread blocked
    until `release` is set; returns what it returns and the batches parsed, in order."""
    import asyncio
    import threading

    from nlu.server.scheduler import Scheduler, parse_to_json

    batches, release = [], threading.Event()

    def parse_texts(model, texts):
        batches.append((model, list(texts)))
        release.wait()  # the model is busy until released
        return parse_to_json(model, texts)

    async def main():
        scheduler = Scheduler(parser, parse_texts=parse_texts, **options)
        scheduler.start()
        try:
            return await scenario(scheduler, release)
        finally:
            release.set()
            await scheduler.stop()

    return asyncio.run(main()), batches


def texts_of(bodies):
    import json

    return [json.loads(b)["text"] for b in bodies]


def test_micro_batches_are_what_queued_while_the_last_batch_ran(parser):
    """With no gathering time, a request to an idle model runs alone; the requests that arrive
    meanwhile form the next batch, up to the size limit."""
    import asyncio

    async def scenario(scheduler, release):
        first = asyncio.ensure_future(scheduler.parse(["a"]))
        await asyncio.sleep(0.05)  # "a" is running alone
        rest = [asyncio.ensure_future(scheduler.parse([t])) for t in "bcde"]
        await asyncio.sleep(0.05)
        release.set()
        return [texts_of(b)[0] for b in await asyncio.gather(first, *rest)]

    result, batches = run_scheduler(parser, scenario, max_batch=3, max_queue=10)
    assert result == list("abcde")
    assert [texts for _, texts in batches] == [["a"], ["b", "c", "d"], ["e"]]


def test_a_full_queue_refuses_at_once_and_a_large_request_runs_alone(parser):
    import asyncio

    from nlu.server.scheduler import Overloaded

    async def scenario(scheduler, release):
        running = asyncio.ensure_future(scheduler.parse(["a"]))
        await asyncio.sleep(0.05)  # "a" runs: the queue is empty
        waiting = [asyncio.ensure_future(scheduler.parse([t])) for t in "bc"]
        await asyncio.sleep(0)
        assert scheduler.waiting == 2
        with pytest.raises(Overloaded, match="2 texts wait; the queue holds 2"):
            await scheduler.parse(["d"])
        release.set()
        done = await asyncio.gather(running, *waiting)
        # Nothing waits: a request larger than the whole queue is taken, and runs alone.
        large = await scheduler.parse(list("vwxyz"))
        return [texts_of(b) for b in done] + [texts_of(large)], scheduler.shed

    (result, shed), batches = run_scheduler(parser, scenario, max_batch=2, max_queue=2)
    assert result == [["a"], ["b"], ["c"], list("vwxyz")] and shed == 1
    assert [texts for _, texts in batches] == [["a"], ["b", "c"], list("vwxyz")]


def test_without_micro_batching_each_request_is_a_batch(parser):
    import asyncio

    async def scenario(scheduler, release):
        first = asyncio.ensure_future(scheduler.parse(["a"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(scheduler.parse(t)) for t in (["b", "c"], ["d"])]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *rest)

    _, batches = run_scheduler(parser, scenario, micro_batch=False, max_queue=10)
    assert [texts for _, texts in batches] == [["a"], ["b", "c"], ["d"]]


def test_a_swap_takes_effect_between_batches(parser, trained):
    """The batch running when another model comes in finishes with the old one; the next
    batch is the new one's, whole."""
    import asyncio

    from nlu.parser import Parser

    other = Parser.load(trained.model_dir, backend="torch")

    async def scenario(scheduler, release):
        running = asyncio.ensure_future(scheduler.parse(["a", "b"]))
        await asyncio.sleep(0.05)
        later = asyncio.ensure_future(scheduler.parse(["c", "d"]))
        await asyncio.sleep(0)
        assert scheduler.swap(other) is parser
        release.set()
        return await asyncio.gather(running, later)

    _, batches = run_scheduler(parser, scenario, max_queue=10)
    assert [(model, texts) for model, texts in batches] == [
        (parser, ["a", "b"]),
        (other, ["c", "d"]),
    ]


def test_overload_is_503_with_retry_after_and_counted(parser):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from nlu.server.scheduler import parse_to_json

    app = create_app(parser, ServerSettings(micro_batch=True, max_queue=1))
    running, release = threading.Event(), threading.Event()
    scheduler = app.state.scheduler

    def blocked(model, texts):
        running.set()
        release.wait()
        return parse_to_json(model, texts)

    def wait_for(condition):
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline
            time.sleep(0.01)

    scheduler.parse_texts = blocked
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        try:
            busy = [pool.submit(c.post, "/model/parse", json={"text": "a"})]
            wait_for(running.is_set)  # "a" runs
            busy.append(pool.submit(c.post, "/model/parse", json={"text": "b"}))
            wait_for(lambda: scheduler.waiting == 1)  # "b" waits: the queue is full
            refused = c.post("/model/parse", json={"text": "c"})
        finally:
            release.set()  # else the pool would wait for "a" forever
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy, retry" in refused.json()["detail"]
        assert [f.result().status_code for f in busy] == [200, 200]
        assert c.get("/health").json()["queue"] == {"waiting": 0, "limit": 1, "shed": 1}
        metrics = c.get("/metrics").text
    assert "nlu_shed_requests_total 1.0" in metrics
    assert 'nlu_requests_total{path="/model/parse",status="503"} 1.0' in metrics
    assert "nlu_batch_texts_count" in metrics and "nlu_request_seconds_bucket" in metrics


def test_every_response_has_a_request_id_and_the_access_log_is_json_lines(parser, caplog):
    import json
    import logging

    app = create_app(parser, ServerSettings(access_log="json"))
    with TestClient(app) as c, caplog.at_level(logging.INFO, logger="nlu.access"):
        mine = c.post("/model/parse", json={"text": "hi"}, headers={"X-Request-ID": "abc-1"})
        theirs = c.get("/health")
        bad = c.get("/health", headers={"X-Request-ID": "x" * 200})
    assert mine.headers["x-request-id"] == "abc-1"
    assert len(theirs.headers["x-request-id"]) == 32 and theirs.headers["x-request-id"] != "abc-1"
    assert len(bad.headers["x-request-id"]) == 32  # too long: replaced
    entries = [json.loads(r.getMessage()) for r in caplog.records if r.name == "nlu.access"]
    assert [(e["method"], e["path"], e["status"]) for e in entries] == [
        ("POST", "/model/parse", 200),
        ("GET", "/health", 200),
        ("GET", "/health", 200),
    ]
    assert entries[0]["request_id"] == "abc-1" and entries[0]["ms"] > 0


def random_model(path, parser, seed):
    """A model with the tiny one's vocabularies and random weights, saved at `path`."""
    import torch

    from nlu import archive
    from nlu.config import load_config
    from nlu.model import build_model
    from tests.conftest import TINY_OVERRIDES

    config = load_config(None, [*TINY_OVERRIDES, "name=other"])
    torch.manual_seed(seed)
    model = build_model(config.model, parser.vocabs)
    with torch.no_grad():  # a sharper intent head: its answers differ from the tiny model's
        for p in model.intent_head.parameters():
            p.mul_(8.0)
    return archive.save(path, config, parser.vocabs, model)


def disagreeing_model(parser, root, text="taxi in dallas"):
    """A model directory under `root` whose intent for `text` differs from `parser`'s."""
    from nlu.parser import Parser

    for seed in range(20):
        path = random_model(root / f"other{seed}", parser, seed)
        if Parser.load(path).parse(text).intent != parser.parse(text).intent:
            return path
    raise AssertionError("no random model disagreed")


def test_put_model_swaps_a_checked_model_under_the_root_with_the_token(parser, tmp_path):
    text = "taxi in dallas"
    good = disagreeing_model(parser, tmp_path / "root")
    broken = tmp_path / "root" / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: [not, a, mapping\n")
    settings = ServerSettings(token="s3cret", model_root=str(tmp_path / "root"))
    right = {"Authorization": "Bearer s3cret"}
    before = parser.parse(text).intent
    with TestClient(create_app(parser, settings)) as c:
        put = lambda body, headers=right: c.put("/model", json=body, headers=headers)  # noqa: E731
        assert put({"model": good.name}, {}).status_code == 401
        outside = put({"model": str(tmp_path)})
        assert outside.status_code == 403 and "outside the model root" in outside.json()["detail"]
        assert put({"model": "../" + tmp_path.name}).status_code == 403
        refused = put({"model": "broken"})
        assert refused.status_code == 422 and "the old one still serves" in refused.json()["detail"]
        assert put({"model": "missing"}).status_code == 422
        parse = lambda: c.post("/model/parse", json={"text": text}, headers=right).json()  # noqa: E731
        assert parse()["intent"]["name"] == before
        swapped = put({"model_file": good.name})  # Rasa's name for the field
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["switched"] == 1 and swapped.json()["workers"] == 1
        assert parse()["intent"]["name"] != before
        assert c.get("/model", headers=right).json()["name"] == "other"
        assert 'nlu_model_reloads_total{result="switched"} 1.0' in c.get("/metrics").text


def test_a_failing_parse_is_a_500_with_a_request_id_and_the_server_goes_on(parser):
    app = create_app(parser, ServerSettings())
    scheduler = app.state.scheduler

    def broken(model, texts):
        raise RuntimeError("the model broke")

    with TestClient(app, raise_server_exceptions=False) as c:
        parse_texts, scheduler.parse_texts = scheduler.parse_texts, broken
        failed = c.post("/model/parse", json={"text": "hi"}, headers={"X-Request-ID": "r-1"})
        scheduler.parse_texts = parse_texts
        fine = c.post("/model/parse", json={"text": "hi"})
    assert failed.status_code == 500 and failed.json() == {"detail": "internal error: RuntimeError"}
    assert failed.headers["x-request-id"] == "r-1"
    assert fine.status_code == 200


def test_put_model_is_shut_without_a_token(parser, tmp_path):
    with TestClient(create_app(parser, ServerSettings(model_root=str(tmp_path)))) as c:
        response = c.put("/model", json={"model": "x"})
    assert response.status_code == 403 and "--token" in response.json()["detail"]


def test_listening_sockets_share_a_port():
    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = listening_socket("127.0.0.1", port)  # SO_REUSEPORT: a second worker's socket
    try:
        assert second.getsockname()[1] == port
    finally:
        first.close()
        second.close()


def test_a_worker_that_keeps_dying_at_start_waits_longer_each_time():
    from nlu.server.supervisor import restart_delay

    assert [restart_delay(n) for n in range(8)] == [0.0, 0.5, 1, 2, 4, 8, 16, 30]
