"""Pure rules behind issue 16's parts: batch graphs, webhook hosts and signatures, client errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook

from feynman_jobs.client.core import RetryPolicy, batch_body, retryable
from feynman_jobs.client.problems import (
    ConflictError,
    ProblemError,
    ServiceUnavailableError,
    raise_for_problem,
)
from feynman_jobs.errors import InvalidRequest
from feynman_jobs.jobs.webhooks import sign
from feynman_jobs.queueing.graph import refuse_refs, resolve
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.queueing.webhooks import host_allowed

SECRET = "whsec_" + base64.b64encode(b"a unit test key of 32 bytes !!!!").decode()


def job(ref: str | None = None, *deps: str) -> EnqueueRequest:
    return EnqueueRequest(type="analyze_conversation", payload={}, ref=ref, depends_on=list(deps) or None)


def test_refs_resolve_to_the_ids_made_for_the_batch() -> None:
    ids, resolved = resolve([job("a"), job("b", "ref:a"), job(None, "ref:b", "existing-id")])
    assert len(set(ids)) == 3
    assert resolved[1].depends_on == [ids[0]]
    assert resolved[2].depends_on == [ids[1], "existing-id"]


@pytest.mark.parametrize(
    ("jobs", "pointers"),
    [
        ([job("a", "ref:a")], ["#/jobs/0/depends_on/0"]),
        ([job("a"), job("a")], ["#/jobs/1/ref"]),
        ([job("a", "ref:zz")], ["#/jobs/0/depends_on/0"]),
        ([job("a", "ref:b"), job("b", "ref:a")], ["#/jobs/0/depends_on"]),
        # Two separate cycles are both named.
        (
            [job("a", "ref:b"), job("b", "ref:a"), job("c", "ref:d"), job("d", "ref:c")],
            ["#/jobs/0/depends_on", "#/jobs/2/depends_on"],
        ),
    ],
)
def test_a_bad_graph_names_every_position(jobs: list[EnqueueRequest], pointers: list[str]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve(jobs)
    assert [error.pointer for error in caught.value.errors] == pointers


def test_a_long_chain_is_checked_without_recursion() -> None:
    chain = [job("j0")] + [job(f"j{i}", f"ref:j{i - 1}") for i in range(1, 1000)]
    ids, resolved = resolve(chain)
    assert resolved[-1].depends_on == [ids[-2]]
    with pytest.raises(InvalidRequest, match="graph"):
        resolve([job("j0", "ref:j999"), *chain[1:]])


def test_a_single_job_cannot_use_refs() -> None:
    with pytest.raises(InvalidRequest) as caught:
        refuse_refs(job("a", "ref:b"))
    assert [error.pointer for error in caught.value.errors] == ["#/ref", "#/depends_on/0"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hooks.tutor.example/x", True),
        ("https://HOOKS.tutor.example:443/x", True),
        ("http://127.0.0.1:8080/x", True),
        ("http://127.0.0.1:9/x", False),
        ("https://tutor.example/x", False),
        ("https://hooks.tutor.example.evil.example/x", False),
        ("https://evil.example/?u=hooks.tutor.example", False),
        ("https://user@evil.example/x", False),
        ("ftp://hooks.tutor.example/x", False),
        ("http://[::1:bad/x", False),
    ],
)
def test_only_listed_hosts_receive_webhooks(url: str, allowed: bool) -> None:
    assert host_allowed(url, ("hooks.tutor.example", "127.0.0.1:8080")) is allowed


def test_our_signature_verifies_with_the_standardwebhooks_library() -> None:
    body = '{"id":"j-1","status":"finished","result":{"summary":"光合作用"}}'.encode()
    timestamp = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(SecretStr(SECRET), "msg_1", timestamp, body),
    }
    assert Webhook(SECRET).verify(body, headers)["result"]["summary"] == "光合作用"
    tampered = {**headers, "webhook-id": "msg_2"}
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(body, tampered)


def test_problems_become_typed_errors_with_their_fields() -> None:
    conflict = httpx.Response(
        409,
        json={
            "type": "urn:feynman-jobs:problem:job-state-conflict",
            "title": "Conflict",
            "status": 409,
            "detail": "ended",
            "job_id": "j-1",
            "job_status": "finished",
        },
    )
    with pytest.raises(ConflictError) as caught:
        raise_for_problem(conflict)
    assert (caught.value.slug, caught.value.extra) == (
        "job-state-conflict",
        {"job_id": "j-1", "job_status": "finished"},
    )
    full = httpx.Response(
        503, headers={"Retry-After": "10"}, json={"type": "urn:feynman-jobs:problem:queue-full"}
    )
    with pytest.raises(ServiceUnavailableError) as unavailable:
        raise_for_problem(full)
    assert unavailable.value.retry_after_s == 10.0
    with pytest.raises(ProblemError) as other:
        raise_for_problem(httpx.Response(418, text="not json"))
    assert (other.value.status, other.value.detail) == (418, "I'm a teapot")
    raise_for_problem(httpx.Response(202, json={}))


def test_the_client_retries_only_what_is_safe_and_keys_every_batch_job() -> None:
    policy = RetryPolicy(backoff_s=0.5, max_backoff_s=2, max_retry_after_s=5)
    assert [policy.delay(attempt, None) for attempt in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert policy.delay(0, 30) == 5
    assert retryable(httpx.Response(503), None)
    assert not retryable(httpx.Response(500), None)
    assert not retryable(httpx.Response(429), None)
    assert retryable(None, httpx.ConnectError("refused"))
    assert not retryable(None, ValueError("bad"))
    body = batch_body([{"type": "t", "payload": {}}, {"type": "t", "payload": {}, "idempotency_key": "mine"}])
    keys = [job["idempotency_key"] for job in body["jobs"]]
    assert keys[1] == "mine"
    assert keys[0]
    assert keys[0] != "mine"
