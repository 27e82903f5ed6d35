"""Property-based bad input on every route: never a 5xx, always a problem document, never a partial job."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis import Redis

from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
TYPES = st.sampled_from(
    [
        "analyze_conversation",
        "consolidate_memory",
        "vectorize_documents",
        "rollup_costs",
        "reap_abandoned_jobs",
        "delete_learner_memories",
        "x",
    ]
)
PAYLOAD_KEYS = st.sampled_from(
    [
        "topic",
        "conversation",
        "session_id",
        "granularity",
        "memory_id",
        "learner_id",
        "namespace",
        "documents",
    ],
)
NEAR_VALID = st.fixed_dictionaries(
    {"type": TYPES, "payload": JSON | st.dictionaries(PAYLOAD_KEYS, JSON)},
    optional={
        "queue": JSON | st.sampled_from(["high", "low", "urgent"]),
        "timeout_s": JSON | st.integers(),
        "max_retries": JSON | st.integers(),
        "delay_s": JSON | st.floats(allow_nan=False),
        "depends_on": JSON,
        "meta": JSON,
        "surprise": JSON,
    },
)  # fmt: skip
RAW = st.binary(max_size=300) | st.just(b"[" * 5000 + b"]" * 5000) | st.just(b'{"a": 1' + b"0" * 5000 + b"}")
PARAMETERS = [
    "q",
    "k",
    "namespace",
    "learner_id",
    "queue",
    "status",
    "type",
    "limit",
    "cursor",
    "granularity",
]
QUERY = st.dictionaries(
    st.sampled_from([*PARAMETERS, "since", "until", "window", "zzz"]), st.text(max_size=20), max_size=4
)
POST_ROUTES = ["/api/jobs", "/api/batches", "/api/estimate", "/api/queues/pause"]
GET_ROUTES = ["/api/jobs", "/api/memories/search", "/api/costs", "/api/stats", "/api/queues", "/api/budget"]
RELAXED = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _client(redis_url: str) -> FlaskClient:
    return create_app(load_settings(redis_url=redis_url)).test_client()


def _job_keys(redis: Redis) -> int:
    return sum(1 for _ in redis.scan_iter(match="rq:job:*", count=500))


def _check(response: Any, before: int, redis: Redis) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json"
        problem = response.get_json(force=True)
        assert problem["status"] == response.status_code
        assert problem["type"].startswith("urn:feynman-jobs:problem:")
        assert _job_keys(redis) == before, "a refused request wrote a job"


@RELAXED
@given(
    route=st.sampled_from(POST_ROUTES),
    body=JSON | NEAR_VALID | st.fixed_dictionaries({"jobs": st.lists(NEAR_VALID, max_size=4)}),
)
def test_json_bodies(redis_url: str, redis: Redis, route: str, body: Any) -> None:
    before = _job_keys(redis)
    _check(
        _client(redis_url).post(route, data=json.dumps(body), content_type="application/json"), before, redis
    )
    redis.delete("rq:suspended")


@RELAXED
@given(
    route=st.sampled_from(POST_ROUTES),
    raw=RAW,
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_raw_bodies(redis_url: str, redis: Redis, route: str, raw: bytes, content_type: str) -> None:
    before = _job_keys(redis)
    _check(_client(redis_url).post(route, data=raw, content_type=content_type), before, redis)
    redis.delete("rq:suspended")


@RELAXED
@given(route=st.sampled_from(GET_ROUTES), query=QUERY)
def test_query_strings(redis_url: str, redis: Redis, route: str, query: dict[str, str]) -> None:
    before = _job_keys(redis)
    _check(_client(redis_url).get(f"{route}?{urlencode(query)}"), before, redis)


@RELAXED
@given(job_id=st.text(max_size=60), action=st.sampled_from(["", "/cancel", "/requeue"]))
def test_job_ids(redis_url: str, redis: Redis, job_id: str, action: str) -> None:
    client = _client(redis_url)
    path = "/api/jobs/" + job_id.replace("/", "_").replace("?", "_").replace("#", "_") + action
    before = _job_keys(redis)
    response = client.get(path) if not action else client.post(path)
    _check(response, before, redis)


@RELAXED
@given(learner_id=st.text(max_size=260))
def test_learner_ids(redis_url: str, redis: Redis, learner_id: str) -> None:
    path = "/api/learners/" + quote(learner_id, safe="") + "/memories"
    before = _job_keys(redis)
    response = _client(redis_url).delete(path)
    _check(response, before, redis)
    if response.status_code == 202:
        assert response.get_json()["type"] == "delete_learner_memories"
