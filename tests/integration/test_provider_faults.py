"""A model provider that refuses, rate-limits, fails or answers badly, met by the Procfile's worker:
permanent errors fail at once, a 429 holds the job until it may ask again (never failing it),
transient errors are retried with backoff, and an invalid answer is sent back once per job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from feynman_jobs import keys
from tests.chat_server import FakeProvider, invalid_answer, model_answer, refuse
from tests.support import Process, analyze_body, enqueue, start_worker, wait_for


@pytest.fixture
def llm_worker(redis_url: str, redis: Redis, tmp_path: Path, provider: FakeProvider) -> Iterator[Process]:
    """The Procfile's worker pointed at the counting fake provider."""
    env = {"FEYNMAN_LLM_BASE_URL": provider.url, "FEYNMAN_LLM_MODEL": "test-model"}
    proc = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    yield proc
    proc.stop()


def _analysis(marker: str, max_retries: int) -> dict[str, Any]:
    """An analysis request whose prompt carries `marker` (the fake provider's script key)."""
    body = analyze_body(marker)
    body["payload"]["topic"] = f"光合作用 {marker}"
    return {**body, "max_retries": max_retries}


def test_a_provider_that_refuses_fails_the_job_at_once(
    api: str, llm_worker: Process, provider: FakeProvider
) -> None:
    statuses = (400, 401, 403, 404, 422)
    for status in statuses:
        provider.script(f"refuse-{status}", refuse(status))
    jobs = {status: enqueue(api, _analysis(f"refuse-{status}", max_retries=3))["id"] for status in statuses}
    for status, job_id in jobs.items():
        failed = wait_for(api, job_id, ("failed",))
        assert (failed["attempts"], failed["retries_left"]) == (1, 0)  # three retries, none used
        assert failed["error"]["type"] == "ProviderError"
        assert f"HTTP {status}" in failed["error"]["message"]
        assert provider.received[f"refuse-{status}"] == 1
    assert sum(provider.answered.values()) == 0


def test_a_rate_limiting_provider_holds_the_job_until_it_may_ask_again(
    api: str, llm_worker: Process, provider: FakeProvider, redis: Redis
) -> None:
    # A short Retry-After is waited out in place (the limiter consulted again); a long one holds the job.
    marker = "limited"
    provider.script(
        marker, refuse(429, {"Retry-After": "1"}), refuse(429, {"Retry-After": "15"}), model_answer
    )
    job = enqueue(api, _analysis(marker, max_retries=0))  # no retries at all: a 429 must not need one
    held = wait_for(api, job["id"], ("scheduled",), timeout=60)
    assert "HTTP 429" in held["held"]["reason"]
    assert held["error"] is None
    assert provider.received[marker] == 2
    # Every worker now waits for the provider, not only this job.
    assert int(redis.pttl(keys.PROVIDER_BACKOFF)) > 0
    done = wait_for(api, job["id"], timeout=90)
    assert (done["attempts"], done["retries_left"], done["held"]) == (1, 0, None)
    assert (provider.received[marker], provider.answered[marker]) == (3, 1)
    assert done["cost"]["calls"] == 1  # the refused calls cost nothing


def test_a_provider_error_is_retried_with_backoff(
    api: str, llm_worker: Process, provider: FakeProvider
) -> None:
    provider.script("unavailable", refuse(503), model_answer)
    done = wait_for(api, enqueue(api, _analysis("unavailable", max_retries=1))["id"], timeout=60)
    assert (done["attempts"], done["retries_left"]) == (2, 0)
    assert (provider.received["unavailable"], provider.answered["unavailable"]) == (2, 1)


def test_an_invalid_answer_is_asked_again_once_per_job_not_per_attempt(
    api: str, llm_worker: Process, provider: FakeProvider
) -> None:
    provider.script("always-invalid", invalid_answer)
    # The second ask meets a 503 (retried by RQ); the retry's invalid answer may not be sent back again.
    provider.script("invalid-then-503", invalid_answer, refuse(503), invalid_answer)
    always = enqueue(api, _analysis("always-invalid", max_retries=3))
    mixed = enqueue(api, _analysis("invalid-then-503", max_retries=3))

    failed = wait_for(api, always["id"], ("failed",))
    assert failed["error"]["type"] == "ModelOutputError"
    assert "invalid JSON twice" in failed["error"]["message"]
    assert failed["attempts"] == 1
    assert (provider.received["always-invalid"], failed["cost"]["calls"]) == (2, 2)

    failed = wait_for(api, mixed["id"], ("failed",), timeout=60)
    assert failed["error"]["type"] == "ModelOutputError"
    assert "already asked again once" in failed["error"]["message"]
    assert failed["attempts"] == 2
    assert (provider.received["invalid-then-503"], provider.answered["invalid-then-503"]) == (3, 2)
