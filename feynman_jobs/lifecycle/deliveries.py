"""Webhook deliveries: one `deliver_webhook` job per ending a job's webhook asks for, and their record.

A job that carries `webhook` in its meta (queueing/webhooks.py) gets, when it ends, a delivery job on
`high` (jobs/webhooks.py sends and signs it). Each delivery's attempts, last HTTP status and times are
kept in one hash per job (`keys.webhook_deliveries`), read by the status document (architecture §3).
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job

from feynman_jobs import keys
from feynman_jobs.lifecycle import timeline
from feynman_jobs.queueing import writer
from feynman_jobs.queueing.catalog import EVERYONE
from feynman_jobs.queueing.planning import plan_job
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.settings import Settings, load_settings

logger = logging.getLogger(__name__)

#: Standard Webhooks message ids are opaque; this prefix makes ours recognisable in a receiver's log.
DELIVERY_PREFIX = "msg_"


class Delivery(BaseModel):
    """One webhook message for one ending of a job, however many attempts it took."""

    id: str
    event: str
    url: str
    state: Literal["pending", "delivered", "retrying", "failed"]
    created_at: datetime
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


@functools.cache
def _service_settings() -> Settings:
    """This process's settings, read once (the web process, a work horse, the scheduler)."""
    return load_settings()


def notify(connection: Redis, job: Job, event: str) -> str | None:
    """Enqueue the delivery of `event` if the job's webhook asks for it; the delivery id, else None.

    Never raises a Redis error: a job's ending must not fail because its webhook could not be queued
    (the failure is logged and the status document shows no delivery).
    """
    hook = job.meta.get("webhook")
    if not isinstance(hook, dict) or event not in hook.get("events", []):
        return None
    settings = _service_settings()
    delivery = Delivery(
        id=DELIVERY_PREFIX + uuid.uuid4().hex,
        event=event,
        url=hook["url"],
        state="pending",
        created_at=datetime.now(UTC),
    )
    request = EnqueueRequest(
        type="deliver_webhook",
        payload={"job_id": job.id, "delivery_id": delivery.id, "event": event, "url": hook["url"]},
    )
    plans = plan_job(request, settings, audiences=EVERYONE)
    try:
        _save(connection, job.id, delivery, settings)
        writer.write(connection, plans, claims=[], ttl=settings.idempotency_ttl)
    except RedisError:
        logger.warning("could not enqueue webhook delivery of job id=%s event=%s", job.id, event)
        return None
    logger.info("enqueued webhook delivery id=%s of job id=%s event=%s", delivery.id, job.id, event)
    return delivery.id


def record_attempt(
    connection: Redis,
    job_id: str,
    delivery_id: str,
    *,
    status: int | None,
    error: str | None,
    final: bool,
) -> Delivery | None:
    """Count one attempt of a delivery: its HTTP status (None if no answer) and whether it was the last."""
    found = get(connection, job_id, delivery_id)
    if found is None:
        return None
    at = datetime.now(UTC)
    delivered = status is not None and 200 <= status < 300
    state: Literal["delivered", "retrying", "failed"] = (
        "delivered" if delivered else "failed" if final else "retrying"
    )
    updated = found.model_copy(
        update={
            "attempts": found.attempts + 1,
            "last_status": status,
            "last_error": error,
            "last_attempt_at": at,
            "delivered_at": at if delivered else None,
            "state": state,
        }
    )
    settings = _service_settings()
    _save(connection, job_id, updated, settings)
    timeline.record_for(
        connection,
        job_id,
        max(settings.result_ttl, settings.failure_ttl),
        "webhook",
        delivery_id=delivery_id,
        attempt=updated.attempts,
        http_status=status,
        state=state,
    )
    return updated


def get(connection: Redis, job_id: str, delivery_id: str) -> Delivery | None:
    """One delivery of a job, or None."""
    raw = connection.hget(keys.webhook_deliveries(job_id), delivery_id)
    return Delivery.model_validate_json(raw) if isinstance(raw, bytes) else None


def of_job(connection: Redis, job_id: str) -> list[Delivery]:
    """Every delivery of a job, oldest first."""
    raw: dict[bytes, bytes] = connection.hgetall(keys.webhook_deliveries(job_id))  # type: ignore[assignment]
    found = [Delivery.model_validate_json(value) for value in raw.values()]
    return sorted(found, key=lambda d: (d.created_at, d.id))


def _save(connection: Redis, job_id: str, delivery: Delivery, settings: Settings) -> None:
    key = keys.webhook_deliveries(job_id)
    document: dict[str, Any] = delivery.model_dump(mode="json")
    with connection.pipeline(transaction=True) as pipe:
        pipe.hset(key, delivery.id, json.dumps(document))
        # As long as the job itself can be read.
        pipe.expire(key, max(settings.result_ttl, settings.failure_ttl))
        pipe.execute()
