"""What each queue holds right now, read from RQ's own keys in one round trip (no writes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from redis import Redis
from rq.registry import (
    BaseRegistry,
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.suspension import is_suspended

from feynman_jobs import keys, redisio
from feynman_jobs.clock import parse_utc
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob, get_queue

#: RQ's registries by the status word of the jobs they hold.
REGISTRIES: dict[str, type[BaseRegistry]] = {
    "started": StartedJobRegistry,
    "scheduled": ScheduledJobRegistry,
    "deferred": DeferredJobRegistry,
    "failed": FailedJobRegistry,
    "finished": FinishedJobRegistry,
    "canceled": CanceledJobRegistry,
}


class QueueSummary(BaseModel):
    """One queue: depth, every registry's count, age of the oldest waiting job."""

    name: str
    depth: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    finished: int
    canceled: int
    oldest_waiting_s: float | None
    #: FEYNMAN_MAX_QUEUED: the depth past which an enqueue is refused (503); None when unset.
    limit: int | None = None


class QueuesDocument(BaseModel):
    """Every queue, and whether workers are paused (and for how much longer)."""

    paused: bool
    pause_remaining_s: int | None
    queues: list[QueueSummary]


def queue_summary(connection: Redis) -> list[dict[str, Any]]:
    """Per queue: depth, every registry's count, and how long the oldest waiting job has waited."""
    queues = [get_queue(name, connection) for name in QUEUE_NAMES]
    with connection.pipeline(transaction=False) as pipe:
        for queue in queues:
            pipe.llen(queue.key)
            pipe.lindex(queue.key, 0)
            for registry in REGISTRIES.values():
                pipe.zcard(registry(queue.name, connection=connection).key)
        replies = pipe.execute()
    per_queue = 2 + len(REGISTRIES)
    summaries = []
    oldest_ids: list[str | None] = []
    for index, queue in enumerate(queues):
        depth, oldest, *counts = replies[index * per_queue : (index + 1) * per_queue]
        oldest_ids.append(redisio.text(oldest) if oldest else None)
        registry_counts = dict(zip(REGISTRIES, map(int, counts), strict=True))
        summaries.append({"name": queue.name, "depth": int(depth), **registry_counts})
    with connection.pipeline(transaction=False) as pipe:
        for job_id in oldest_ids:
            pipe.hget(JsonJob.key_for(job_id or "-"), "enqueued_at")
        enqueued = pipe.execute()
    now = datetime.now(UTC)
    for summary, stamp in zip(summaries, enqueued, strict=True):
        age = None
        if stamp and summary["depth"]:
            when = parse_utc(redisio.text(stamp))
            age = max(0.0, (now - when).total_seconds())
        summary["oldest_waiting_s"] = age
    return summaries


def paused(connection: Redis) -> bool:
    """Whether workers are told to take no new jobs (RQ's suspension)."""
    return bool(is_suspended(connection))


def pause_remaining_s(connection: Redis) -> int | None:
    """Seconds until a timed pause ends by itself (None: not paused, or paused until resumed)."""
    ttl = int(connection.ttl(keys.RQ_SUSPENDED))
    return ttl if ttl > 0 else None


def queues_document(connection: Redis, limit: int | None = None) -> QueuesDocument:
    """Every queue with its depth `limit`, and whether workers are paused (and for how much longer)."""
    return QueuesDocument(
        paused=paused(connection),
        pause_remaining_s=pause_remaining_s(connection),
        queues=[QueueSummary(**summary, limit=limit) for summary in queue_summary(connection)],
    )
