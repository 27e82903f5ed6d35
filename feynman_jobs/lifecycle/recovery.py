"""Recovering from lost workers: abandoned started jobs, popped jobs never started, registry upkeep.

The scheduler process runs these on its own timers (processes/upkeep.py), never behind queued work,
and every judgement of life or death is the Redis server's: a worker is alive while its
`rq:worker:<name>` key exists, and that key expires by the server's clock when the worker stops
heartbeating. A worker kills its own horse before its key can expire (processes/worker.py), so a job
judged abandoned here has no horse left running it (architecture §5).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.rate_limit import RateLimitRegistry
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    StartedJobRegistry,
)
from rq.serializers import JSONSerializer

from feynman_jobs import keys, redisio
from feynman_jobs.clock import server_now
from feynman_jobs.lifecycle.outcomes import record_attempt_error
from feynman_jobs.queueing import pending
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob, get_queue

logger = logging.getLogger(__name__)

#: Index entries checked per run of `clean` (the oldest first; a later run goes on from there).
INDEX_SWEEP = 10_000


def _owners(conn: Redis, entries: list[str]) -> list[tuple[str, str | None, str | None]]:
    """For each started-registry entry `job:execution`: its worker, the job's status and job's worker."""
    with conn.pipeline(transaction=False) as pipe:
        for entry in entries:
            job_id, _, execution_id = entry.partition(":")
            pipe.hget(keys.rq_execution(job_id, execution_id), "worker_name")
            pipe.hmget(keys.rq_job(job_id), ["status", "worker_name"])
        replies = pipe.execute()
    owners = []
    for execution_worker, (status, job_worker) in zip(replies[0::2], replies[1::2], strict=True):
        job_worker_name = redisio.text(job_worker) if job_worker else None
        owner = redisio.text(execution_worker) if execution_worker else job_worker_name or ""
        owners.append((owner, redisio.text(status) if status else None, job_worker_name))
    return owners


def _alive(conn: Redis, names: set[str]) -> set[str]:
    ordered = sorted(name for name in names if name)
    with conn.pipeline(transaction=False) as pipe:
        for name in ordered:
            pipe.exists(keys.rq_worker(name))
        found = pipe.execute()
    return {name for name, exists in zip(ordered, found, strict=True) if exists}


def reap_abandoned(conn: Redis) -> dict[str, list[str]]:
    """Retry (or fail as AbandonedJobError) every started job whose worker's key has expired.

    RQ's own registry cleanup applies each job's retry policy and failure callback; entries left over
    from an earlier run of a job that now runs elsewhere are only removed. Returns queue -> job ids.
    """
    reaped: dict[str, list[str]] = {}
    for name in QUEUE_NAMES:
        registry = StartedJobRegistry(name, connection=conn, job_class=JsonJob, serializer=JSONSerializer)
        entries = [redisio.text(raw) for raw in conn.zrange(registry.key, 0, -1)]
        if not entries:
            continue
        owners = _owners(conn, entries)
        alive = _alive(conn, {owner for owner, _, _ in owners})
        abandoned: list[str] = []
        stale: list[str] = []
        for entry, (owner, status, job_worker) in zip(entries, owners, strict=True):
            # Only the job's current run is RQ's to retry; an entry of an earlier run just goes.
            current = status == "started" and job_worker in (owner, None)
            if owner not in alive:
                (abandoned if current else stale).append(entry)
            elif not current and not conn.exists(keys.rq_execution(*entry.split(":", 1))):
                stale.append(entry)
        if stale:
            conn.zrem(registry.key, *stale)
        if abandoned:
            # rq-compat(rq==3.0.0): a started-registry entry is `job_id:execution_id` scored by its
            # deadline; scoring it 0 makes RQ's own cleanup treat it as expired and apply the retry
            # policy. Remove if RQ offers "abandon this execution" directly.
            conn.zadd(registry.key, dict.fromkeys(abandoned, 0), xx=True)
            registry.cleanup(timestamp=1, exception_handlers=[record_attempt_error])
            reaped[name] = [entry.partition(":")[0] for entry in abandoned]
            logger.warning("reaped abandoned jobs queue=%s jobs=%s", name, reaped[name])
    return reaped


def recover_popped(conn: Redis) -> dict[str, list[str]]:
    """Put back jobs that lost workers popped and never started (any queue, any job's origin)."""
    return pending.recover(conn)


def clean_queue_registries(queue: Queue, failure_ttl: int | None = None) -> None:
    """RQ's registry upkeep for one queue, except its started registry (`reap_abandoned` does that,
    by the server's clock; RQ's sweep compares two hosts' clocks). Canceled jobs expire too."""
    conn, kwargs = queue.connection, {"job_class": queue.job_class, "serializer": queue.serializer}
    for registry_class in (FinishedJobRegistry, FailedJobRegistry, DeferredJobRegistry, ReadyJobRegistry):
        registry_class(queue.name, connection=conn, **kwargs).cleanup()  # type: ignore[arg-type]
    for rate_limit_registry in RateLimitRegistry.all(conn):
        rate_limit_registry.cleanup()
    expire_canceled(conn, queue.name, failure_ttl)


def expire_canceled(conn: Redis, queue: str, failure_ttl: int | None = None) -> int:
    """Canceled jobs live as long as failed ones: drop registry entries of expired jobs, and give a
    TTL to canceled jobs that have none (canceled by a tool other than ours)."""
    # rq-compat(rq==3.0.0): RQ never expires its canceled registry (get_expired_job_ids raises), and
    # scores an entry by its cancel time; ours are scored by expiry. Remove when RQ expires them.
    key = keys.rq_registry("canceled", queue)
    now = server_now(conn)
    due = [redisio.text(raw) for raw in conn.zrangebyscore(key, "-inf", now.timestamp())]
    if not due:
        return 0
    with conn.pipeline(transaction=False) as pipe:
        for job_id in due:
            pipe.ttl(keys.rq_job(job_id))
            pipe.hget(keys.rq_job(job_id), "failure_ttl")
        replies = pipe.execute()
    gone = []
    with conn.pipeline(transaction=False) as pipe:
        for job_id, ttl, stored_ttl in zip(due, replies[0::2], replies[1::2], strict=True):
            if ttl == -2:
                gone.append(job_id)
                continue
            keep = int(stored_ttl) if stored_ttl else failure_ttl
            if ttl == -1 and keep:
                pipe.expire(keys.rq_job(job_id), keep)
                pipe.zadd(key, {job_id: (now + timedelta(seconds=keep)).timestamp()})
            elif ttl > 0:
                pipe.zadd(key, {job_id: (now + timedelta(seconds=int(ttl))).timestamp()})
        if gone:
            pipe.zrem(key, *gone)
        pipe.execute()
    return len(gone)


def clean(conn: Redis, failure_ttl: int | None = None) -> dict[str, int]:
    """Registry upkeep for every queue, and index entries of expired jobs dropped."""
    for name in QUEUE_NAMES:
        clean_queue_registries(get_queue(name, conn), failure_ttl)
    removed = 0
    indexes = [keys.JOBS_INDEX]
    indexes += [redisio.text(key) for key in conn.scan_iter(match=keys.JOBS_BY_TYPE_PATTERN, count=100)]
    for key in indexes:
        members = [redisio.text(m) for m in conn.zrange(key, 0, INDEX_SWEEP - 1)]
        with conn.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.exists(keys.rq_job(member))
            exists = pipe.execute()
        gone = [member for member, alive in zip(members, exists, strict=True) if not alive]
        if gone:
            removed += int(conn.zrem(key, *gone))
    return {"index_entries_removed": removed}
