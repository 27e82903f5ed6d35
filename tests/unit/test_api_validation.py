"""Every bad request gets a 4xx problem document and writes nothing (fakeredis: no Lua runs here)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fakeredis import FakeRedis
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from feynman_jobs.queueing.wiring import fetch_job
from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app
from tests.support import free_port

CONVERSATION = [
    {"role": "assistant", "content": "请用你自己的话解释一下光合作用。"},
    {"role": "user", "content": "光合作用就是植物用阳光把二氧化碳和水变成葡萄糖和氧气。"},
]
VALID: dict[str, Any] = {
    "type": "analyze_conversation",
    "payload": {"session_id": "s-1", "topic": "光合作用", "conversation": CONVERSATION},
}


@pytest.fixture
def fake(fake_redis: FakeRedis) -> FakeRedis:
    return fake_redis


def _app(connection: Redis, **overrides: Any) -> Flask:
    # fakeredis has no INFO or WAIT: no replicas to wait for.
    settings = load_settings(redis_url="redis://127.0.0.1:1/0", redis_min_replicas=0, **overrides)
    return create_app(settings, redis=connection)


@pytest.fixture
def client(fake: FakeRedis) -> FlaskClient:
    return _app(fake, max_body_bytes=64 * 1024).test_client()


def _problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["type"] == f"urn:feynman-jobs:problem:{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def test_a_valid_job_is_accepted_and_queued(client: FlaskClient, fake: FakeRedis) -> None:
    response = client.post("/api/jobs", json=VALID)
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/api/jobs/{body['id']}"
    assert body["type"] == "analyze_conversation"
    assert body["queue"] == "high"
    assert body["status"] == "queued"
    assert body["attempts"] == 0
    assert body["retries_left"] == body["max_retries"] == 3
    assert fake.lrange("rq:queue:high", 0, -1) == [body["id"].encode()]
    job = fetch_job(body["id"], fake)
    assert job.kwargs["topic"] == "光合作用"
    assert job.timeout == 120


def test_queue_timeout_and_retries_can_be_overridden(client: FlaskClient, fake: FakeRedis) -> None:
    response = client.post("/api/jobs", json={**VALID, "queue": "low", "timeout_s": 30, "max_retries": 1})
    body = response.get_json()
    assert (body["queue"], body["max_retries"]) == ("low", 1)
    assert fetch_job(body["id"], fake).timeout == 30
    assert fake.llen("rq:queue:low") == 1


def test_consolidation_is_followed_by_a_deferred_vectorization(client: FlaskClient, fake: FakeRedis) -> None:
    payload = {"topic": "光合作用", "conversation": CONVERSATION, "session_id": "s-9", "learner_id": "l-9"}
    body = client.post("/api/jobs", json={"type": "consolidate_memory", "payload": payload}).get_json()
    [follow_up_id] = body["follow_up"]
    follow_up = client.get(f"/api/jobs/{follow_up_id}").get_json()
    assert follow_up["type"] == "vectorize_documents"
    assert follow_up["status"] == "deferred"
    assert follow_up["depends_on"] == [body["id"]]
    memory_id = fetch_job(body["id"], fake).kwargs["memory_id"]
    assert fetch_job(follow_up_id, fake).kwargs == {"memory_id": memory_id, "learner_id": "l-9"}


def test_unknown_job_is_a_404_problem(client: FlaskClient) -> None:
    body = _problem(client.get("/api/jobs/no-such-job"), 404, "job-not-found")
    assert body["job_id"] == "no-such-job"
    _problem(client.get("/api/jobs/bad:id"), 404, "job-not-found")


def test_unknown_route_and_method_are_problems(client: FlaskClient) -> None:
    _problem(client.get("/api/nothing-here"), 404, "not-found")
    response = client.delete("/api/jobs")
    _problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["Allow"]


BAD_REQUESTS: list[tuple[str, Any, int, str, str | None]] = [
    ("unknown type", {**VALID, "type": "mine_bitcoin"}, 422, "unknown-job-type", "#/type"),
    ("missing type", {"payload": VALID["payload"]}, 422, "invalid-request", "#/type"),
    ("missing payload", {"type": "analyze_conversation"}, 422, "invalid-request", "#/payload"),
    (
        "missing payload field",
        {"type": "analyze_conversation", "payload": {"session_id": "s", "conversation": CONVERSATION}},
        422,
        "invalid-request",
        "#/payload/topic",
    ),
    (
        "wrong role",
        {**VALID, "payload": {**VALID["payload"], "conversation": [{"role": "robot", "content": "hi"}]}},
        422,
        "invalid-request",
        "#/payload/conversation/0/role",
    ),
    (
        "wrong-typed field",
        {**VALID, "payload": {**VALID["payload"], "topic": 42}},
        422,
        "invalid-request",
        "#/payload/topic",
    ),
    (
        "unknown payload field",
        {**VALID, "payload": {**VALID["payload"], "function": "os.system"}},
        422,
        "invalid-request",
        "#/payload/function",
    ),
    ("unknown top-level field", {**VALID, "func": "os.system"}, 422, "invalid-request", "#/func"),
    ("bad queue", {**VALID, "queue": "urgent"}, 422, "invalid-request", "#/queue"),
    ("negative timeout", {**VALID, "timeout_s": -5}, 422, "invalid-request", "#/timeout_s"),
    ("timeout above the type's limit", {**VALID, "timeout_s": 99999}, 422, "invalid-request", "#/timeout_s"),
    ("too many retries", {**VALID, "max_retries": 99}, 422, "invalid-request", "#/max_retries"),
    # Found by schemathesis: lax pydantic read `false` as 0 and a number as Unix time.
    ("boolean retries", {**VALID, "max_retries": False}, 422, "invalid-request", "#/max_retries"),
    ("numeric run_at", {**VALID, "run_at": 0}, 422, "invalid-request", "#/run_at"),
    ("digits for run_at", {**VALID, "run_at": "1700000000"}, 422, "invalid-request", "#/run_at"),
    (
        "number for a boolean",
        {**VALID, "allow_failed_dependencies": 0},
        422,
        "invalid-request",
        "#/allow_failed_dependencies",
    ),
    (
        "numeric window_start",
        {"type": "rollup_costs", "payload": {"granularity": "day", "window_start": 0}},
        422,
        "invalid-request",
        "#/payload/window_start",
    ),
    ("unknown dependency", {**VALID, "depends_on": ["nope"]}, 422, "invalid-request", "#/depends_on/0"),
    (
        "run_at without timezone",
        {**VALID, "run_at": "2026-11-23T10:00:00"},
        422,
        "invalid-request",
        "#/run_at",
    ),
    ("array body", [VALID], 422, "invalid-request", "#"),
    (
        "no learner turn to analyze",
        {**VALID, "payload": {**VALID["payload"], "conversation": [{"role": "assistant", "content": "hi"}]}},
        422,
        "invalid-request",
        "#/payload",
    ),
    (
        "vectorize with neither source",
        {"type": "vectorize_documents", "payload": {"namespace": "docs"}},
        422,
        "invalid-request",
        "#/payload",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "slug", "pointer"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_job_requests_are_problems_and_write_nothing(
    client: FlaskClient, fake: FakeRedis, body: Any, status: int, slug: str, pointer: str | None
) -> None:
    problem = _problem(client.post("/api/jobs", json=body), status, slug)
    assert pointer in [error["pointer"] for error in problem["errors"]]
    assert fake.dbsize() == 0


RAW_BAD_BODIES: list[tuple[str, bytes, str, int, str]] = [
    ("malformed json", b'{"type": ', "application/json", 400, "malformed-json"),
    ("wrong content type", json.dumps(VALID).encode(), "text/plain", 415, "unsupported-media-type"),
    (
        "form body",
        b"type=analyze_conversation",
        "application/x-www-form-urlencoded",
        415,
        "unsupported-media-type",
    ),
    ("invalid utf-8", b'{"type": "\xff\xfe"}', "application/json", 400, "malformed-json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json", 413, "request-entity-too-large"),
    ("deep nesting that fits", b"[" * 30_000 + b"]" * 30_000, "application/json", 400, "malformed-json"),
    (
        "huge number",
        b'{"type": "x", "payload": {}, "max_retries": 1' + b"0" * 5000 + b"}",
        "application/json",
        400,
        "malformed-json",
    ),
    (
        "NaN",
        b'{"type": "analyze_conversation", "payload": {}, "delay_s": NaN}',
        "application/json",
        400,
        "malformed-json",
    ),
    (
        "oversized body",
        json.dumps({**VALID, "meta": {"x": "a" * 70_000}}).encode(),
        "application/json",
        413,
        "request-entity-too-large",
    ),
]


@pytest.mark.parametrize(
    ("raw", "content_type", "status", "slug"),
    [case[1:] for case in RAW_BAD_BODIES],
    ids=[case[0] for case in RAW_BAD_BODIES],
)
def test_unreadable_bodies_are_problems_and_write_nothing(
    client: FlaskClient, fake: FakeRedis, raw: bytes, content_type: str, status: int, slug: str
) -> None:
    _problem(client.post("/api/jobs", data=raw, content_type=content_type), status, slug)
    assert fake.dbsize() == 0


def test_redis_down_is_a_503_problem_not_a_traceback() -> None:
    dead = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    client = _app(dead).test_client()
    body = _problem(client.post("/api/jobs", json=VALID), 503, "redis-unavailable")
    assert "Traceback" not in json.dumps(body)
    _problem(client.get("/api/jobs/some-id"), 503, "redis-unavailable")
    assert client.get("/healthz").status_code == 200
    _problem(client.get("/readyz"), 503, "redis-unavailable")


def test_tokens_when_configured_are_required_on_the_api_only(fake: FakeRedis) -> None:
    client = _app(fake, api_tokens="token-one-0123456789,token-two-0123456789").test_client()
    body = _problem(client.post("/api/jobs", json=VALID), 401, "unauthorized")
    assert "token-one" not in json.dumps(body)
    _problem(client.get("/api/jobs/x", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
    _problem(
        client.get("/api/jobs/x", headers={"Authorization": "Basic token-one-0123456789"}),
        401,
        "unauthorized",
    )
    assert fake.dbsize() == 0
    accepted = client.post("/api/jobs", json=VALID, headers={"Authorization": "Bearer token-two-0123456789"})
    assert accepted.status_code == 202
    assert client.get("/healthz").status_code == 200


def test_query_times_and_pause_durations_are_not_coerced(client: FlaskClient) -> None:
    # Found by schemathesis: `until=0.5` was read as Unix time, `true` as a one-second pause.
    body = _problem(client.get("/api/costs?until=0.5"), 422, "invalid-request")
    assert [error["pointer"] for error in body["errors"]] == ["#/query/until"]
    body = _problem(client.post("/api/queues/pause", json={"duration_s": True}), 422, "invalid-request")
    assert [error["pointer"] for error in body["errors"]] == ["#/duration_s"]
