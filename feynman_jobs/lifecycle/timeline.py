"""A job's timeline: what happened to it, in order, kept in Redis as long as the job itself.

One list per job (`keys.job_events`), each entry `{at, event, ...}` as JSON, written where each thing
happens: started by a worker (processes/worker), an attempt failed and was retried or not
(outcomes.record_attempt_error), held (jobs/context.holdable), finished or stopped (outcomes'
callbacks), canceled (lifecycle/cancellation), requeued (lifecycle/control), a webhook delivery
attempt (lifecycle/deliveries). The first entry, `enqueued`, is read from the job hash instead, so
enqueueing pays nothing for it. Appending never fails a job: a Redis error is logged and the entry
is lost (architecture §3).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.defaults import DEFAULT_FAILURE_TTL
from rq.job import Job

from feynman_jobs import keys
from feynman_jobs.queueing import pending

logger = logging.getLogger(__name__)

#: Entries kept per job (the newest): a job held many times by a budget must not grow without end.
MAX_EVENTS = 200


class TimelineDocument(BaseModel):
    """GET /api/jobs/<id>/events: the job's events, oldest first."""

    job_id: str
    events: list[dict[str, Any]]


def _stamp(at: datetime) -> str:
    """RFC 3339 with microseconds always: entries sort as text too."""
    return at.isoformat(timespec="microseconds")


def ttl_of(job: Job) -> int:
    """As long as the job stays readable: its result or failure TTL, whichever is longer."""
    ttls = [ttl for ttl in (job.result_ttl, job.failure_ttl) if ttl is not None and ttl > 0]
    return max(ttls) if ttls else DEFAULT_FAILURE_TTL


def _entry(event: str, **fields: Any) -> str:
    return json.dumps({"at": _stamp(datetime.now(UTC)), "event": event, **fields}, ensure_ascii=False)


def started(job: Job, worker: str) -> pending.TimelineEntry:
    """The `started` entry, for the worker's claim to write atomically with the status (queueing/pending)."""
    return pending.TimelineEntry(_entry("started", worker=worker), ttl_of(job), MAX_EVENTS)


def add(pipe: Pipeline, job_id: str, ttl: int, event: str, *, trim: bool = True, **fields: Any) -> None:
    """Queue the append of one event on `pipe` (the caller executes it); the list lives `ttl` seconds.

    `trim=False` leaves out the trim to MAX_EVENTS, for the entry that ends an attempt: an attempt adds
    at most two untrimmed entries (started, and finished or stopped), and every entry that can repeat
    without end (held, retried, requeued, a delivery) trims, so the list stays bounded.
    """
    key = keys.job_events(job_id)
    pipe.rpush(key, _entry(event, **fields))
    if trim:
        pipe.ltrim(key, -MAX_EVENTS, -1)
    pipe.expire(key, ttl)


def record(connection: Redis, job: Job, event: str, **fields: Any) -> None:
    """Append one event to the job's timeline now; never raises a Redis error."""
    record_for(connection, job.id, ttl_of(job), event, **fields)


def record_for(connection: Redis, job_id: str, ttl: int, event: str, **fields: Any) -> None:
    """`record` for a job known only by id."""
    try:
        # Not a transaction: each command stands alone, and a job pays for every command here.
        with connection.pipeline(transaction=False) as pipe:
            add(pipe, job_id, ttl, event, **fields)
            pipe.execute()
    except RedisError:
        logger.warning("could not record event %s of job id=%s", event, job_id)


def events(connection: Redis, job: Job) -> list[dict[str, Any]]:
    """The job's timeline, oldest first. Its first entry, `enqueued`, is read from the job itself
    (created_at, origin): every job has it, whoever wrote the job, at no cost to the enqueue."""
    raw: list[bytes] = connection.lrange(keys.job_events(job.id), 0, -1)  # type: ignore[assignment]
    created = _stamp(job.created_at.replace(tzinfo=UTC)) if job.created_at else None
    first = {"at": created, "event": "enqueued", "queue": job.origin}
    return [first, *(json.loads(entry) for entry in raw)]
