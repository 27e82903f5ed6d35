"""A job's timeline: what happened to it, in order, kept in Redis as long as the job itself.

One list per job (`keys.job_events`), each entry `{at, event, ...}` as JSON. Written where each thing
happens: accepted (lifecycle/submit), started by a worker (processes/worker), an attempt failed
(outcomes.record_attempt_error), retried or ended (outcomes' callbacks, lifecycle/cancellation), held
(jobs/context.holdable), a webhook delivery attempt (lifecycle/deliveries). Appending never fails a
job: a Redis error is logged and the entry is lost (architecture §3).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.defaults import DEFAULT_FAILURE_TTL
from rq.job import Job

from feynman_jobs import keys

logger = logging.getLogger(__name__)

#: Entries kept per job (the newest): a job held many times by a budget must not grow without end.
MAX_EVENTS = 200


class TimelineDocument(BaseModel):
    """GET /api/jobs/<id>/events: the job's events, oldest first."""

    job_id: str
    events: list[dict[str, Any]]


def ttl_of(job: Job) -> int:
    """As long as the job stays readable: its result or failure TTL, whichever is longer."""
    ttls = [ttl for ttl in (job.result_ttl, job.failure_ttl) if ttl is not None and ttl > 0]
    return max(ttls) if ttls else DEFAULT_FAILURE_TTL


def add(pipe: Pipeline, job_id: str, ttl: int, event: str, **fields: Any) -> None:
    """Queue the append of one event on `pipe` (the caller executes it); the list lives `ttl` seconds."""
    entry = {"at": datetime.now(UTC).isoformat(), "event": event, **fields}
    key = keys.job_events(job_id)
    pipe.rpush(key, json.dumps(entry, ensure_ascii=False))
    pipe.ltrim(key, -MAX_EVENTS, -1)
    pipe.expire(key, ttl)


def record(connection: Redis, job: Job, event: str, **fields: Any) -> None:
    """Append one event to the job's timeline now; never raises a Redis error."""
    record_for(connection, job.id, ttl_of(job), event, **fields)


def record_for(connection: Redis, job_id: str, ttl: int, event: str, **fields: Any) -> None:
    """`record` for a job known only by id."""
    try:
        with connection.pipeline(transaction=True) as pipe:
            add(pipe, job_id, ttl, event, **fields)
            pipe.execute()
    except RedisError:
        logger.warning("could not record event %s of job id=%s", event, job_id)


def enqueued(connection: Redis, jobs: Sequence[Job]) -> None:
    """The first entry of each newly written job: its queue and the status it was written with."""
    try:
        with connection.pipeline(transaction=False) as pipe:
            for job in jobs:
                status = job.get_status(refresh=False).value
                add(pipe, job.id, ttl_of(job), "enqueued", queue=job.origin, status=status)
            pipe.execute()
    except RedisError:
        logger.warning("could not record the enqueue of %d jobs", len(jobs))


def events(connection: Redis, job_id: str) -> list[dict[str, Any]]:
    """The job's timeline, oldest first."""
    raw: list[bytes] = connection.lrange(keys.job_events(job_id), 0, -1)  # type: ignore[assignment]
    return [json.loads(entry) for entry in raw]
