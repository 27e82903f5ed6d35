"""Recovering from dead workers: abandoned started jobs, orphaned queued jobs, stale index entries.

RQ finds a job whose worker died only after the job's own heartbeat deadline (minutes), and its
multi-queue pop has no intermediate queue to recover a popped job from. These functions close both
gaps; the maintenance jobs (jobs/maintenance.py) run them on the scheduler's clock (architecture §5).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from redis import Redis
from rq.registry import StartedJobRegistry
from rq.registry import clean_registries as rq_clean_registries
from rq.serializers import JSONSerializer

from feynman_jobs import keys, redisio
from feynman_jobs.clock import parse_utc
from feynman_jobs.lifecycle.outcomes import record_attempt_error
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob, get_queue

logger = logging.getLogger(__name__)

#: A working RQ worker heartbeats at least every 45 s (idle) or 30 s (busy); silence past this is death.
STALE_AFTER_S = 60
#: Index entries checked per run of clean_registries.
INDEX_SWEEP = 10_000
#: A job `queued` this long but in no queue was lost by a worker between pop and start.
ORPHAN_AGE_S = 60
ORPHAN_RECHECK_S = 2.0


def _worker_alive(conn: Redis, worker_name: str, now: datetime, stale_after_s: int) -> bool:
    last = conn.hget(keys.rq_worker(worker_name), "last_heartbeat")
    if last is None:
        return False
    beat = parse_utc(redisio.text(last))
    return (now - beat).total_seconds() <= stale_after_s


def reap_abandoned(
    conn: Redis, stale_after_s: int = STALE_AFTER_S, *, skip: str = ""
) -> dict[str, list[str]]:
    """Retry (or fail as abandoned) every started job whose worker stopped heartbeating.

    Marks those jobs expired in their started registry, then lets RQ's own registry cleanup apply
    each job's retry policy (AbandonedJobError when out of retries). `skip` is the caller's own job.
    """
    now = datetime.now(UTC)
    reaped: dict[str, list[str]] = {}
    for name in QUEUE_NAMES:
        registry = StartedJobRegistry(name, connection=conn, job_class=JsonJob, serializer=JSONSerializer)
        dead: list[str] = []
        for raw in conn.zrange(registry.key, 0, -1):
            entry = redisio.text(raw)
            job_id = entry.split(":", 1)[0]
            if job_id == skip:
                continue
            worker_name = conn.hget(keys.rq_job(job_id), "worker_name")
            if worker_name and not _worker_alive(conn, redisio.text(worker_name), now, stale_after_s):
                dead.append(entry)
        if dead:
            # rq-compat(rq==3.0.0): a started-registry entry is `job_id:execution_id` scored by its
            # deadline; scoring it 0 makes RQ's own cleanup treat it as expired and apply its retry
            # policy. Remove if RQ offers "abandon this execution" directly.
            conn.zadd(registry.key, dict.fromkeys(dead, 0), xx=True)
            registry.cleanup(timestamp=1, exception_handlers=[record_attempt_error])
            reaped[name] = [entry.split(":", 1)[0] for entry in dead]
            logger.warning("reaped abandoned jobs queue=%s jobs=%s", name, reaped[name])
    return reaped


def clean(conn: Redis) -> dict[str, int]:
    """RQ's registry cleanup for every queue, stale job-index entries dropped, orphans put back."""
    for name in QUEUE_NAMES:
        rq_clean_registries(get_queue(name, conn))
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
    return {"index_entries_removed": removed, "orphans_requeued": requeue_orphans(conn)}


def requeue_orphans(conn: Redis, older_than_s: int = ORPHAN_AGE_S) -> int:
    """Put back `queued` jobs that are in no queue: a worker popped them and lost Redis before it
    could start them (RQ's multi-queue pop has no intermediate queue to recover them from)."""
    members = [redisio.text(m) for m in conn.zrevrange(keys.JOBS_INDEX, 0, INDEX_SWEEP - 1)]
    with conn.pipeline(transaction=False) as pipe:
        for member in members:
            pipe.hmget(keys.rq_job(member), ["status", "origin", "enqueued_at"])
        fields = pipe.execute()
    now = datetime.now(UTC)
    candidates = []
    for job_id, (status, origin, enqueued_at) in zip(members, fields, strict=True):
        if status != b"queued" or not origin or not enqueued_at:
            continue
        when = parse_utc(redisio.text(enqueued_at))
        if (now - when).total_seconds() > older_than_s:
            candidates.append((job_id, redisio.text(origin)))
    if not candidates:
        return 0
    # A worker that has just popped a job starts it within milliseconds: look again a moment later,
    # so only jobs that stayed queued-but-nowhere are put back.
    time.sleep(ORPHAN_RECHECK_S)
    requeued = 0
    for job_id, origin in candidates:
        queue_key = get_queue(origin, conn).key
        still_queued = conn.hget(keys.rq_job(job_id), "status") == b"queued"
        if still_queued and conn.lpos(queue_key, job_id) is None:
            conn.lpush(queue_key, job_id)
            requeued += 1
            logger.warning("requeued orphaned job id=%s queue=%s", job_id, origin)
    return requeued
