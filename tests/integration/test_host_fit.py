"""Fitting the host app: signed webhooks, graphs inside a batch, back-pressure — on one real stack.

One gunicorn and one `rq worker` (the Procfile's lines) serve the whole module, with webhooks and a
queue limit configured; the tests do not flush Redis between them, so each reads only its own jobs.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from redis import Redis
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from werkzeug import Request, Response

from feynman_jobs import keys
from feynman_jobs.client.aio import AsyncFeynmanClient
from feynman_jobs.client.core import RetryPolicy
from feynman_jobs.client.problems import ConflictError, InvalidRequestError, NotFoundError
from feynman_jobs.client.sync import FeynmanClient
from tests.support import (
    Process,
    analyze_body,
    descendants,
    enqueue,
    free_port,
    http,
    sample,
    start_web,
    start_worker,
    wait_for,
    wait_until,
)

SECRET = "whsec_" + base64.b64encode(b"feynman-jobs test webhook key 32").decode()
MAX_QUEUED = 6


@dataclass
class Receiver:
    """A webhook endpoint that verifies every delivery with the standardwebhooks library."""

    url: str
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, request: Request) -> Response:
        try:
            document = Webhook(SECRET).verify(request.get_data(), dict(request.headers))
        except WebhookVerificationError as exc:
            self.rejected.append(str(exc))
            return Response("bad signature", status=401)
        delivery_id = request.headers["webhook-id"]
        with self.lock:
            self.received.append((delivery_id, document))
            seen = sum(1 for got, _ in self.received if got == delivery_id)
        # A job whose meta asks for it gets a 500 on its first delivery: the service must retry.
        if document["meta"].get("fail_first") and seen == 1:
            return Response("try again", status=500)
        return Response(status=204)

    def for_job(self, job_id: str) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return [(got, doc) for got, doc in self.received if doc["id"] == job_id]


@dataclass(frozen=True)
class Stack:
    api: str
    redis: Redis
    receiver: Receiver
    worker: Process


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    receiver = Receiver(server.url_for("/hook"))
    server.expect_request("/hook", method="POST").respond_with_handler(receiver.handle)
    client = Redis.from_url(redis_url)
    client.flushall()
    env = {
        "FEYNMAN_WEBHOOK_SECRET": SECRET,
        "FEYNMAN_WEBHOOK_HOSTS": "127.0.0.1",
        "FEYNMAN_MAX_QUEUED": str(MAX_QUEUED),
    }
    logs = Path(tmp_path_factory.mktemp("host-fit"))
    web, api = start_web(redis_url, logs / "web.log", env)
    worker: Process | None = None
    try:
        worker = start_worker(redis_url, logs / "worker.log", client, env)
        yield Stack(api, client, receiver, worker)
    finally:
        if worker is not None:
            worker.stop()
        web.stop()
        server.clear()
        server.stop()
        client.flushall()
        client.close()


def test_webhooks_are_signed_retried_until_2xx_and_only_to_allowed_hosts(stack: Stack) -> None:
    api, receiver = stack.api, stack.receiver
    hook = {"url": receiver.url}
    retried = enqueue(api, {**analyze_body("wh-1"), "webhook": hook, "meta": {"fail_first": True}})
    every_end = ["finished", "failed", "stopped", "canceled"]
    assert retried["webhook"] == {"url": receiver.url, "events": every_end}
    failing = {
        "type": "vectorize_documents",
        "payload": {"memory_id": "mem-none", "learner_id": "l-1"},
        "max_retries": 0,
        "webhook": {**hook, "events": ["failed"]},
    }
    failed = enqueue(api, failing)
    not_wanted = enqueue(api, {**analyze_body("wh-2"), "webhook": {**hook, "events": ["failed"]}})
    canceled = enqueue(api, {**analyze_body("wh-3"), "delay_s": 60, "webhook": hook})
    assert http("POST", f"{api}/api/jobs/{canceled['id']}/cancel")[0] == 200

    wait_until(lambda: len(receiver.for_job(retried["id"])) == 2, 20, "the retried delivery")
    (first_id, first), (second_id, second) = receiver.for_job(retried["id"])
    # The same message twice (the receiver deduplicates by webhook-id), the job's status document.
    assert first_id == second_id
    assert first_id.startswith("msg_")
    assert first["status"] == second["status"] == "finished"
    assert first["result"] == second["result"]
    assert first["result"]
    document = wait_for(api, retried["id"])
    wait_until(
        lambda: (
            http("GET", f"{api}/api/jobs/{retried['id']}")[2]["webhook_deliveries"][0]["state"] == "delivered"
        ),
        10,
        "the delivery to be recorded",
    )
    delivery = http("GET", f"{api}/api/jobs/{retried['id']}")[2]["webhook_deliveries"]
    assert [(d["id"], d["event"], d["attempts"], d["last_status"]) for d in delivery] == [
        (first_id, "finished", 2, 204)
    ]
    assert document["result"] == first["result"]

    wait_until(lambda: len(receiver.for_job(failed["id"])) == 1, 20, "the failure's delivery")
    assert receiver.for_job(failed["id"])[0][1]["status"] == "failed"
    wait_until(lambda: len(receiver.for_job(canceled["id"])) == 1, 20, "the cancel's delivery")
    assert receiver.for_job(canceled["id"])[0][1]["status"] == "canceled"
    wait_for(api, not_wanted["id"])
    assert receiver.for_job(not_wanted["id"]) == []
    assert receiver.rejected == []

    # A host outside FEYNMAN_WEBHOOK_HOSTS is refused at enqueue, and nothing is written.
    jobs_before = stack.redis.zcard(keys.JOBS_INDEX)
    for url in ("http://localhost:9/hook", "https://hooks.example.com/x", "ftp://127.0.0.1/x"):
        code, _, problem = http("POST", api + "/api/jobs", {**analyze_body("wh-4"), "webhook": {"url": url}})
        assert code == 422, problem
        assert problem["errors"][0]["pointer"].startswith("#/webhook")
    assert stack.redis.zcard(keys.JOBS_INDEX) == jobs_before


def _diamond(prefix: str, **first: Any) -> list[dict[str, Any]]:
    """top -> (left, right) -> bottom, as a batch's jobs (`first` adds fields to the top job)."""
    return [
        {**analyze_body(f"{prefix}-top"), "ref": "top", **first},
        {**analyze_body(f"{prefix}-left"), "ref": "left", "depends_on": ["ref:top"]},
        {**analyze_body(f"{prefix}-right"), "ref": "right", "depends_on": ["ref:top"]},
        {**analyze_body(f"{prefix}-bottom"), "ref": "bottom", "depends_on": ["ref:left", "ref:right"]},
    ]


def test_a_diamond_inside_one_batch_runs_in_order_and_cancels_whole(stack: Stack) -> None:
    api = stack.api
    code, _, batch = http("POST", api + "/api/batches?include=jobs", {"jobs": _diamond("dag")})
    assert code == 202, batch
    top, left, right, bottom = batch["job_ids"]
    assert [job["status"] for job in batch["jobs"]] == ["queued", "deferred", "deferred", "deferred"]
    assert batch["jobs"][3]["depends_on"] == [left, right]
    assert [job["ref"] for job in batch["jobs"]] == ["top", "left", "right", "bottom"]
    done = {job_id: wait_for(api, job_id, timeout=30) for job_id in (bottom, left, right, top)}
    assert done[top]["ended_at"] <= min(done[left]["started_at"], done[right]["started_at"])
    assert max(done[left]["ended_at"], done[right]["ended_at"]) <= done[bottom]["started_at"]
    progress = http("GET", f"{api}/api/batches/{batch['id']}")[2]
    assert (progress["total"], progress["done_fraction"]) == (4, 1.0)

    # Canceling the batch while its top waits ends the whole graph.
    code, _, waiting = http("POST", api + "/api/batches", {"jobs": _diamond("dag-2", delay_s=60)})
    assert code == 202, waiting
    assert http("POST", f"{api}/api/batches/{waiting['id']}/cancel")[0] == 200
    statuses = [http("GET", f"{api}/api/jobs/{job_id}")[2]["status"] for job_id in waiting["job_ids"]]
    assert statuses == ["canceled"] * 4
    assert http("GET", f"{api}/api/batches/{waiting['id']}")[2]["done_fraction"] == 1.0


def test_a_bad_graph_is_refused_naming_positions_and_writes_nothing(stack: Stack) -> None:
    api = stack.api
    jobs_before = stack.redis.zcard(keys.JOBS_INDEX)
    cycle = _diamond("bad")
    cycle[0] = {**cycle[0], "depends_on": ["ref:bottom"]}
    duplicate_and_unknown = [
        {**analyze_body("bad-a"), "ref": "a"},
        {**analyze_body("bad-b"), "ref": "a"},
        {**analyze_body("bad-c"), "depends_on": ["ref:a", "ref:nowhere"]},
    ]
    expected = {
        # Both cycles through the diamond, each with its positions.
        "cycle": [
            ("#/jobs/0/depends_on", "#/jobs/0 -> #/jobs/3 -> #/jobs/1 -> #/jobs/0"),
            ("#/jobs/0/depends_on", "#/jobs/0 -> #/jobs/3 -> #/jobs/2 -> #/jobs/0"),
        ],
        "duplicate_and_unknown": [
            ("#/jobs/1/ref", "#/jobs/0/ref"),
            ("#/jobs/2/depends_on/1", "'ref:nowhere'"),
        ],
    }
    for name, jobs in (("cycle", cycle), ("duplicate_and_unknown", duplicate_and_unknown)):
        code, _, problem = http("POST", api + "/api/batches", {"jobs": jobs})
        assert code == 422, problem
        found = [(error["pointer"], error["detail"]) for error in problem["errors"]]
        assert len(found) == len(expected[name]), found
        for (pointer, detail), (want_pointer, mentions) in zip(found, expected[name], strict=True):
            assert pointer == want_pointer
            assert mentions in detail
    # A single job cannot use refs.
    code, _, problem = http("POST", api + "/api/jobs", {**analyze_body("bad-d"), "depends_on": ["ref:x"]})
    assert code == 422, problem
    assert problem["errors"][0]["pointer"] == "#/depends_on/0"
    assert stack.redis.zcard(keys.JOBS_INDEX) == jobs_before


def test_a_full_queue_refuses_with_503_and_writes_nothing(stack: Stack) -> None:
    api, redis = stack.api, stack.redis
    low = {**analyze_body("bp"), "queue": "low"}
    keyed = {**low, "idempotency_key": "bp-replay"}
    assert http("POST", api + "/api/queues/pause")[0] == 200
    filled: dict[str, Any] = {}
    try:
        # One batch fills `low` to its limit while no worker takes anything.
        code, _, body = http("POST", api + "/api/batches", {"jobs": [keyed] + [low] * (MAX_QUEUED - 1)})
        assert code == 202, body
        filled.update(body)
        # A worker that was already waiting when the pause began may take one job and hand it back
        # (processes/worker.py): the queue is full again once it has.
        wait_until(lambda: redis.llen(keys.rq_queue("low")) == MAX_QUEUED, 10, "the queue to be full")
        jobs_before, sequence = redis.zcard(keys.JOBS_INDEX), redis.get(keys.JOBS_SEQUENCE)
        code, headers, problem = http("POST", api + "/api/jobs", low)
        assert code == 503, problem
        assert headers["Content-Type"] == "application/problem+json"
        assert int(headers["Retry-After"]) > 0
        assert problem["type"] == "urn:feynman-jobs:problem:queue-full"
        assert (problem["queue"], problem["depth"], problem["limit"]) == ("low", MAX_QUEUED, MAX_QUEUED)
        # A batch that would overflow is refused whole, even its jobs for other queues; a replayed
        # idempotency key still gets its job back.
        code, _, problem = http("POST", api + "/api/batches", {"jobs": [analyze_body("bp-high"), low]})
        assert code == 503, problem
        code, _, replay = http("POST", api + "/api/jobs", keyed)
        assert (code, replay["id"]) == (200, filled["job_ids"][0])
        assert redis.zcard(keys.JOBS_INDEX) == jobs_before
        assert redis.get(keys.JOBS_SEQUENCE) == sequence
        assert redis.llen(keys.rq_queue("low")) == MAX_QUEUED
        # Depth and limit are in /api/queues and /metrics.
        queues = {q["name"]: q for q in http("GET", api + "/api/queues")[2]["queues"]}
        assert (queues["low"]["depth"], queues["low"]["limit"]) == (MAX_QUEUED, MAX_QUEUED)
        metrics = http("GET", api + "/metrics")[2]
        assert f'feynman_queue_limit{{queue="low"}} {float(MAX_QUEUED)}' in metrics
        assert f'feynman_queue_depth{{queue="low"}} {float(MAX_QUEUED)}' in metrics
    finally:
        if filled:
            http("POST", f"{api}/api/batches/{filled['id']}/cancel")
        http("POST", api + "/api/queues/resume")
    assert redis.llen(keys.rq_queue("low")) == 0


def test_a_timeline_shows_each_attempt_of_a_retried_job(stack: Stack) -> None:
    api = stack.api
    failing = {
        "type": "vectorize_documents",
        "payload": {"memory_id": "mem-missing", "learner_id": "l-tl"},
        "max_retries": 1,
        "webhook": {"url": stack.receiver.url, "events": ["failed"]},
    }
    job = enqueue(api, failing)
    wait_for(api, job["id"], ("failed",), timeout=30)
    wait_until(lambda: len(stack.receiver.for_job(job["id"])) == 1, 10, "the failure's delivery")

    def timeline() -> list[dict[str, Any]]:
        code, _, body = http("GET", f"{api}/api/jobs/{job['id']}/events")
        assert code == 200, body
        assert body["job_id"] == job["id"]
        return list(body["events"])

    wait_until(lambda: timeline()[-1]["event"] == "webhook", 10, "the delivery in the timeline")
    events = timeline()
    assert [event["event"] for event in events] == [
        "enqueued",
        "started",
        "attempt_failed",
        "retried",
        "started",
        "attempt_failed",
        "failed",
        "webhook",
    ]
    assert events[0]["queue"] == "default"
    workers = {event["worker"] for event in events if event["event"] == "started"}
    assert workers == {http("GET", api + "/api/workers")[2]["workers"][0]["name"]}
    failures = [event for event in events if event["event"] == "attempt_failed"]
    assert {event["type"] for event in failures} == {"MemoryNotFound"}
    assert [event["at"] for event in events] == sorted(event["at"] for event in events)
    assert (events[-1]["http_status"], events[-1]["state"]) == (204, "delivered")
    assert http("GET", f"{api}/api/jobs/no-such-job/events")[0] == 404


def test_the_python_client_drives_a_whole_flow(stack: Stack) -> None:
    api, redis = stack.api, stack.redis
    conversation = sample("photosynthesis_zh")
    memory = {
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
        "learner_id": "l-client",
        "session_id": "s-client",
    }
    analysis = {**analyze_body("client")["payload"], "learner_id": "l-client"}
    quick = RetryPolicy(attempts=4, backoff_s=0.05, max_retry_after_s=0.5)
    with FeynmanClient(api, retry=quick) as client:
        batch = client.batch(
            [
                {"type": "consolidate_memory", "payload": memory, "ref": "memory"},
                {"type": "analyze_conversation", "payload": analysis, "depends_on": ["ref:memory"]},
            ],
            include_jobs=True,
        )
        assert [job["id"] for job in batch["jobs"]] == batch["job_ids"]
        assert [job["ref"] for job in batch["jobs"]] == ["memory", None]
        consolidated, analyzed = (client.wait(job_id, timeout_s=30) for job_id in batch["job_ids"])
        assert (consolidated["status"], analyzed["status"]) == ("finished", "finished")
        assert client.wait(consolidated["follow_up"][0], timeout_s=30)["status"] == "finished"
        assert client.batch_progress(batch["id"])["done_fraction"] == 1.0
        hits = client.search("光合作用", learner_id="l-client", k=3)["hits"]
        assert hits
        assert hits[0]["doc_id"] == consolidated["result"]["id"]
        assert client.estimate("analyze_conversation", analysis)["jobs"][0]["type"] == "analyze_conversation"

        # Writes carry an idempotency key: the same key is the same job.
        once = client.enqueue("analyze_conversation", analysis, delay_s=60, idempotency_key="client-once")
        assert (
            client.enqueue("analyze_conversation", analysis, idempotency_key="client-once")["id"]
            == once["id"]
        )
        assert client.cancel(once["id"])["action"] == "canceled"
        # Problem documents become typed exceptions with the problem's fields.
        with pytest.raises(ConflictError) as conflict:
            client.cancel(once["id"])
        assert (conflict.value.slug, conflict.value.extra["job_status"]) == ("job-state-conflict", "canceled")
        with pytest.raises(NotFoundError) as missing:
            client.get("no-such-job")
        assert missing.value.extra["job_id"] == "no-such-job"
        with pytest.raises(InvalidRequestError) as invalid:
            client.enqueue("analyze_conversation", {"topic": "x"})
        assert {error["pointer"] for error in invalid.value.errors} >= {"#/payload/session_id"}

        # A 503 from a full queue is retried (its Retry-After capped by the policy) until there is room.
        assert http("POST", api + "/api/queues/pause")[0] == 200
        low = {**analyze_body("client-bp"), "queue": "low"}
        code, _, filled = http("POST", api + "/api/batches", {"jobs": [low] * MAX_QUEUED})
        assert code == 202, filled
        emptied = threading.Timer(0.3, http, ("POST", f"{api}/api/batches/{filled['id']}/cancel"))
        emptied.start()
        try:
            late = client.enqueue("analyze_conversation", analysis, queue="low")
        finally:
            emptied.join()
            http("POST", api + "/api/queues/resume")
        assert redis.zscore(keys.JOBS_INDEX, late["id"]) is not None
        assert client.wait(late["id"], timeout_s=30)["status"] == "finished"

    # Connection errors are retried, then raised.
    with (
        FeynmanClient(f"http://127.0.0.1:{free_port()}", retry=quick) as nowhere,
        pytest.raises(httpx.ConnectError),
    ):
        nowhere.get("any")

    async def asynchronously() -> dict[str, Any]:
        async with AsyncFeynmanClient(api, retry=quick) as client:
            one = [{"type": "analyze_conversation", "payload": analysis}]
            assert set(await client.batch(one)) == {"id", "job_ids"}
            batch = await client.batch(one, include_jobs=True)
            [job] = batch["jobs"]
            assert (job["id"], job["batch_id"]) == (batch["job_ids"][0], batch["id"])
            return await client.wait(job["id"], timeout_s=30)

    assert asyncio.run(asynchronously())["result"] == analyzed["result"]


def test_workers_are_listed_and_one_shuts_down_over_http(stack: Stack) -> None:
    """Runs last in the module: it shuts down the module's worker."""
    api, worker = stack.api, stack.worker
    code, _, listed = http("GET", api + "/api/workers")
    assert code == 200, listed
    (info,) = listed["workers"]
    assert info["queues"] == ["high", "default", "low"]
    assert info["pid"] in descendants(worker.proc.pid) | {worker.proc.pid}
    assert info["hostname"] == socket.gethostname()
    assert info["state"] in ("idle", "busy")
    assert info["current_job_id"] is None
    assert info["successful_jobs"] >= 5
    assert info["last_heartbeat"] is not None
    code, _, done = http("POST", f"{api}/api/workers/{info['name']}/shutdown")
    assert (code, done["action"]) == (202, "shutdown-requested")
    wait_until(lambda: worker.proc.poll() is not None, 15, "the worker to exit")
    wait_until(lambda: http("GET", api + "/api/workers")[2]["workers"] == [], 5, "the worker to leave")
    assert http("POST", f"{api}/api/workers/{info['name']}/shutdown")[0] == 404
