"""Canceling is atomic and complete, and no job waits for a dependency that can no longer finish.

A waiting job is canceled by one Lua script that checks its status and takes it out of its queue or
registry in the same step, so a worker can never pop it afterwards; a job already popped is refused
at its claim (queueing/pending.py). Canceling a job ends what depended on it: the follow-ups the
service made for it, and every dependent that does not allow failed dependencies, each canceled with
the reason in its status document. The scheduler sweeps the deferred registries for dependents of
jobs that failed, were stopped or canceled by any other path (architecture §5).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import WatchError
from rq.command import send_stop_job_command
from rq.defaults import DEFAULT_FAILURE_TTL
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.serializers import JSONSerializer
from rq.utils import now, utcformat

from feynman_jobs import keys, redisio
from feynman_jobs.costs import reservations
from feynman_jobs.errors import JobNotFound, JobStateConflict
from feynman_jobs.lifecycle import deliveries, timeline
from feynman_jobs.lifecycle.status import load_job
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob, fetch_job, get_queue

logger = logging.getLogger(__name__)

#: Where a canceled job's meta says why (read by the status document as its `error`).
CANCELED_META = "canceled"
#: A dependency that ended this way means a dependent that requires success can never run.
UNSUCCESSFUL = {"failed": "failed", "stopped": "was stopped", "canceled": "was canceled"}
#: Dependency statuses after which nothing more will happen to it ("expired": its hash is gone).
ENDED = {"finished", "expired", *UNSUCCESSFUL}

# rq-compat(rq==3.0.0): what Job.cancel writes (status, out of the queue and registries, into the
# canceled registry), in one script with the status check, on RQ's key and field names. Remove when RQ
# cancels atomically with a check of the status.
# KEYS: job, queue, scheduled, deferred, ready and canceled registries, its dependencies, its dependents.
# ARGV: job id, ttl, new meta, ended_at, RQ's job key prefix, its dependency ids...
# Returns 'canceled', or 'was:<the status found>'.
_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'was:missing' end
if status == 'queued' then
  redis.call('LREM', KEYS[2], 0, ARGV[1])
elseif status == 'scheduled' then
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif status == 'deferred' or status == 'ready_to_enqueue' then
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZREM', KEYS[5], ARGV[1])
else
  return 'was:' .. status
end
-- Out of every dependency's dependents: a dependency finishing now can no longer enqueue it.
for i = 6, #ARGV do
  redis.call('SREM', ARGV[5] .. ARGV[i] .. ':dependents', ARGV[1])
end
local ttl = tonumber(ARGV[2])
local now = redis.call('TIME')
redis.call('HSET', KEYS[1], 'status', 'canceled', 'meta', ARGV[3], 'ended_at', ARGV[4])
redis.call('ZADD', KEYS[6], tonumber(now[1]) + ttl, ARGV[1])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[7], ttl)
redis.call('EXPIRE', KEYS[8], ttl)
return 'canceled'
"""


@dataclass
class Cancellation:
    """What one cancel did: `canceled` or `stopping`, and the jobs it ended with it."""

    action: str
    cascaded: list[str] = field(default_factory=list)


def _cancel_waiting(connection: Redis, job: JsonJob, reason: dict[str, str]) -> tuple[bool, str]:
    """Cancel `job` if it is waiting: (True, 'canceled'), else (False, the status it has)."""
    origin, job_id = job.origin, job.id
    meta = {**job.meta, CANCELED_META: reason}
    ttl = job.failure_ttl if job.failure_ttl and job.failure_ttl > 0 else DEFAULT_FAILURE_TTL
    result: Any = connection.eval(
        _CANCEL,
        8,
        keys.rq_job(job_id),
        keys.rq_queue(origin),
        *(keys.rq_registry(kind, origin) for kind in ("scheduled", "deferred", "ready", "canceled")),
        job.dependencies_key,
        keys.rq_dependents(job_id),
        job_id,
        int(ttl),
        JSONSerializer.dumps(meta),
        utcformat(now()),
        keys.RQ_JOB_PREFIX,
        # rq-compat(rq==3.0.0): the ids in the job hash; RQ's own dependencies set is written under a
        # key with a doubled colon (Job.dependencies_key). Remove with a public getter for both.
        *job._dependency_ids,
    )
    if result != b"canceled":
        return False, redisio.text(result).removeprefix("was:")
    reservations.release_job(connection, job_id)
    timeline.record(connection, job, "canceled", reason=reason["message"])
    deliveries.notify(connection, job, "canceled")
    logger.info("canceled job id=%s: %s", job_id, reason["message"])
    return True, "canceled"


def cancel(connection: Redis, job_id: str) -> Cancellation:
    """Cancel a waiting job (and what depends on it), or ask its worker to stop a running one."""
    job = load_job(connection, job_id)
    reason = {"type": "JobCanceled", "message": "canceled on request"}
    done, status = _cancel_waiting(connection, job, reason)
    if done:
        return Cancellation("canceled", cascade(connection, job_id))
    if status == "started":
        try:
            send_stop_job_command(connection, job.id, serializer=JSONSerializer)
        except InvalidJobOperation:
            raise JobStateConflict(job.id, status, f"job {job.id} is not running on a worker") from None
        logger.info("asked the worker to stop job id=%s", job.id)
        # Its follow-ups exist only to continue its work: they end with it.
        follow_ups = [
            fid for fid in job.meta.get("follow_up", []) if _end(connection, fid, job.id, "was stopped")
        ]
        return Cancellation("stopping", follow_ups)
    if status == "missing":
        raise JobNotFound(job.id)
    raise JobStateConflict(job.id, status, f"job {job.id} already ended ({status}); nothing to cancel")


def _end(connection: Redis, job_id: str, dependency: str, how: str) -> bool:
    """Cancel a dependent because `dependency` ended unsuccessfully; False if it was not waiting."""
    try:
        job = fetch_job(job_id, connection)
    except NoSuchJobError:
        return False
    reason = {
        "type": "DependencyFailed",
        "message": f"dependency {dependency} {how}; this job needs it to finish first",
    }
    return _cancel_waiting(connection, job, reason)[0]


def cascade(connection: Redis, job_id: str) -> list[str]:
    """Settle the dependents of a job that just ended (and theirs, and so on); returns those ended."""
    ended: list[str] = []
    frontier = [job_id]
    while frontier:
        parent = frontier.pop()
        for raw in connection.smembers(keys.rq_dependents(parent)):
            dependent = redisio.text(raw)
            if settle_deferred(connection, dependent) == "canceled":
                ended.append(dependent)
                frontier.append(dependent)
    return ended


def settle_deferred(connection: Redis, job_id: str) -> str | None:
    """A deferred job whose dependencies have all ended, or one of which cannot succeed: cancel it
    (it requires success) or enqueue it (it allows failed dependencies). None when it must wait on."""
    status, allow, ids = connection.hmget(
        keys.rq_job(job_id), ["status", "allow_dependency_failures", "dependency_ids"]
    )
    if status != b"deferred":
        return None
    allow_failure = allow not in (None, b"", b"0")
    dependencies = sorted(json.loads(ids)) if ids else []
    with connection.pipeline(transaction=False) as pipe:
        for dependency in dependencies:
            pipe.hget(keys.rq_job(dependency), "status")
        statuses = [redisio.text(raw) if raw else "expired" for raw in pipe.execute()]
    unsuccessful = [(dep, st) for dep, st in zip(dependencies, statuses, strict=True) if st in UNSUCCESSFUL]
    if unsuccessful and not allow_failure:
        dependency, status = unsuccessful[0]
        return "canceled" if _end(connection, job_id, dependency, UNSUCCESSFUL[status]) else None
    if all(status in ENDED for status in statuses):
        return "enqueued" if _enqueue(connection, job_id) else None
    return None


def _enqueue(connection: Redis, job_id: str) -> bool:
    """Move a deferred job to its queue through RQ's ready registry, which never enqueues twice."""
    try:
        job = fetch_job(job_id, connection)
    except NoSuchJobError:
        return False
    queue = get_queue(job.origin, connection)
    ready = queue.ready_job_registry
    with connection.pipeline() as pipe:
        try:
            pipe.watch(job.key)
            if pipe.hget(job.key, "status") != b"deferred":
                return False
            pipe.multi()
            ready.register_jobs([job], pipeline=pipe)
            pipe.execute()
        except WatchError:
            return False
    enqueued = ready.enqueue_jobs([job.id])
    logger.info("enqueued job id=%s: its dependencies have ended", job.id)
    return bool(enqueued)


def sweep(connection: Redis) -> dict[str, list[str]]:
    """Settle every deferred job of every queue (see `settle_deferred`); returns what was done."""
    done: dict[str, list[str]] = {"canceled": [], "enqueued": []}
    for name in QUEUE_NAMES:
        for raw in connection.zrange(keys.rq_registry("deferred", name), 0, -1):
            job_id = redisio.text(raw)
            outcome = settle_deferred(connection, job_id)
            if outcome == "canceled":
                done["canceled"] += [job_id, *cascade(connection, job_id)]
            elif outcome == "enqueued":
                done["enqueued"].append(job_id)
    return done
