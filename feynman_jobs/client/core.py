"""What the sync and async clients share: request shapes, the retry rule, backoff and wait policy."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

#: Statuses a job does not leave.
ENDED = frozenset({"finished", "failed", "stopped", "canceled"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a request the service may not have seen or could not take.

    Retried: connection errors and timeouts, and 503 (a full queue, Redis unreachable). Every write
    carries an idempotency key, so a retried enqueue never makes a second job.
    """

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    #: A 503's Retry-After is honoured up to this many seconds.
    max_retry_after_s: float = 30.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds to wait before attempt `attempt + 1` (attempt counts from 0)."""
        if retry_after_s is not None:
            return min(retry_after_s, self.max_retry_after_s)
        return float(min(self.backoff_s * 2**attempt, self.max_backoff_s))


def retryable(response: httpx.Response | None, error: Exception | None) -> bool:
    """Whether an attempt's outcome is worth another try."""
    if error is not None:
        return isinstance(error, httpx.TransportError)
    return response is not None and response.status_code == 503


def headers(token: str | None) -> dict[str, str]:
    """The headers every request sends."""
    return {"Accept": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}


def job_body(job_type: str, payload: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """An enqueue body with an idempotency key (a new one unless the caller gave one)."""
    body = {"type": job_type, "payload": payload, **{k: v for k, v in fields.items() if v is not None}}
    body.setdefault("idempotency_key", str(uuid.uuid4()))
    return body


def batch_body(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch body whose every job has an idempotency key: a retried batch makes no job twice."""
    return {
        "jobs": [{**job, "idempotency_key": job.get("idempotency_key") or str(uuid.uuid4())} for job in jobs]
    }


def search_params(q: str, learner_id: str | None, namespace: str | None, k: int) -> dict[str, str]:
    """Query parameters of GET /api/memories/search."""
    params = {"q": q, "k": str(k)}
    if learner_id is not None:
        params["learner_id"] = learner_id
    if namespace is not None:
        params["namespace"] = namespace
    return params


def poll_delay(attempt: int) -> float:
    """Seconds between two polls of `wait`: 0.2, 0.4, 0.8 … up to 2."""
    return float(min(0.2 * 2**attempt, 2.0))
