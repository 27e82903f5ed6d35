"""A job's timeline: what happened to it, in order, kept in Redis as long as the job itself.

One list per job (`keys.job_events`), each entry `{at, event, ...}` as JSON, written where each thing
happens: an attempt failed and was retried or not (outcomes.record_attempt_error), held
(jobs/context.holdable), stopped (outcomes' callback), canceled (lifecycle/cancellation), requeued
(lifecycle/control), a webhook delivery attempt (lifecycle/deliveries). Three kinds of entry are read
from the job hash instead, so the common path pays nothing for them: `enqueued` (created_at, origin);
the `started` of the attempt running or finished now (started_at, worker_name), and `finished`
(ended_at). An attempt that ends any other way writes its own `started` entry, backdated to its start,
in the same RPUSH as its end: a job that ran twice shows both starts. Appending never fails a job: a
Redis error is logged and the entry is lost (architecture §3).
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
from rq.job import Job, JobStatus
from rq.utils import str_to_date

from feynman_jobs import keys

logger = logging.getLogger(__name__)

#: Entries kept per job (the newest): a job held many times by a budget must not grow without end.
MAX_EVENTS = 200
#: Entries that end an attempt in the list; another attempt may start after each.
ATTEMPT_ENDS = frozenset({"attempt_failed", "held", "stopped"})


class TimelineDocument(BaseModel):
    """GET /api/jobs/<id>/events: the job's events, oldest first."""

    job_id: str
    events: list[dict[str, Any]]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _stamp(at: datetime) -> str:
    """RFC 3339 with microseconds always: entries sort as text too."""
    return _utc(at).isoformat(timespec="microseconds")


def ttl_of(job: Job) -> int:
    """As long as the job stays readable: its result or failure TTL, whichever is longer."""
    ttls = [ttl for ttl in (job.result_ttl, job.failure_ttl) if ttl is not None and ttl > 0]
    return max(ttls) if ttls else DEFAULT_FAILURE_TTL


def entry(event: str, *, at: datetime | None = None, **fields: Any) -> str:
    """One timeline entry as stored: JSON `{at, event, ...}`, `at` now unless given."""
    stamp = _stamp(at if at is not None else datetime.now(UTC))
    return json.dumps({"at": stamp, "event": event, **fields}, ensure_ascii=False)


def started_entry(job: Job) -> list[str]:
    """The `started` entry of the attempt `job` holds (started_at, worker_name), for whoever ends that
    attempt otherwise than finished to write with its end; none when the job never started."""
    if job.started_at is None:
        return []
    return [entry("started", at=job.started_at, worker=job.worker_name)]


def reread_start(connection: Redis, job: Job) -> None:
    """Read the running attempt's start into `job` from its hash, for a process that did not run it
    (the worker parent after its horse died or was stopped): that is the start the reader compares.
    Unread (a Redis error, logged), `job` keeps what it had."""
    try:
        raw: list[bytes | None] = connection.hmget(job.key, ["started_at", "worker_name"])  # type: ignore[assignment]
    except RedisError:
        logger.warning("could not read the start of job id=%s for its timeline", job.id)
        return
    started_at, worker = raw
    if started_at:
        job.started_at = str_to_date(started_at)
    if worker:
        job.worker_name = worker.decode()


def add(pipe: Pipeline, job_id: str, ttl: int, *entries: str, trim: bool = True) -> None:
    """Queue the append of `entries` (made by `entry`) on `pipe` (the caller executes it); the list
    lives `ttl` seconds and keeps its newest MAX_EVENTS entries (`trim=False` leaves that out)."""
    key = keys.job_events(job_id)
    pipe.rpush(key, *entries)
    if trim:
        pipe.ltrim(key, -MAX_EVENTS, -1)
    pipe.expire(key, ttl)


def keep(pipe: Pipeline, job_id: str, ttl: int) -> None:
    """Queue on `pipe` a new TTL for the job's list, adding nothing to it."""
    pipe.expire(keys.job_events(job_id), ttl)


def record(connection: Redis, job: Job, event: str, **fields: Any) -> None:
    """Append one event to the job's timeline now; never raises a Redis error."""
    record_for(connection, job.id, ttl_of(job), event, **fields)


def record_for(connection: Redis, job_id: str, ttl: int, event: str, **fields: Any) -> None:
    """`record` for a job known only by id."""
    _append(connection, job_id, ttl, event, entry(event, **fields))


def record_attempt_end(connection: Redis, job: Job, event: str, **fields: Any) -> None:
    """`record` for an event that ends the running attempt (`held`): its `started` entry goes first."""
    _append(connection, job.id, ttl_of(job), event, *started_entry(job), entry(event, **fields))


def _append(connection: Redis, job_id: str, ttl: int, event: str, *entries: str) -> None:
    try:
        # Not a transaction: each command stands alone, and a job pays for every command here.
        with connection.pipeline(transaction=False) as pipe:
            add(pipe, job_id, ttl, *entries)
            pipe.execute()
    except RedisError:
        logger.warning("could not record event %s of job id=%s", event, job_id)


def events(connection: Redis, job: Job) -> list[dict[str, Any]]:
    """The job's timeline, oldest first: `enqueued` from the job hash, the list, and the current
    attempt's `started` and `finished` from the job hash, each where it happened."""
    raw: list[bytes] = connection.lrange(keys.job_events(job.id), 0, -1)  # type: ignore[assignment]
    listed: list[dict[str, Any]] = [json.loads(item) for item in raw]
    created = _stamp(job.created_at) if job.created_at else None
    first = {"at": created, "event": "enqueued", "queue": job.origin}
    current = _current_attempt(job, listed)
    if not current:
        return [first, *listed]
    # After everything but webhook deliveries (nothing else is written while an attempt runs or
    # after it finishes), and after the deliveries of earlier ends made before it started.
    place = max((i + 1 for i, item in enumerate(listed) if item["event"] != "webhook"), default=0)
    while place < len(listed) and listed[place]["at"] <= current[0]["at"]:
        place += 1
    return [first, *listed[:place], *current, *listed[place:]]


def _current_attempt(job: Job, listed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries the job hash stands for: the running or finished attempt's start (unless the list
    has it: written by its end, or by a worker from before this rule) and a finish."""
    status = job.get_status(refresh=False)
    if status not in (JobStatus.STARTED, JobStatus.FINISHED) or job.started_at is None:
        return []
    current: list[dict[str, Any]] = []
    starts = [i for i, item in enumerate(listed) if item["event"] == "started"]
    last = starts[-1] if starts else None
    if last is None or (
        any(item["event"] in ATTEMPT_ENDS for item in listed[last + 1 :])
        and datetime.fromisoformat(listed[last]["at"]) < _utc(job.started_at)
    ):
        current.append({"at": _stamp(job.started_at), "event": "started", "worker": job.worker_name})
    ended_at = job.ended_at if status == JobStatus.FINISHED else None
    if ended_at is not None and not any(item["event"] == "finished" for item in listed):
        current.append({"at": _stamp(ended_at), "event": "finished"})
    return current
