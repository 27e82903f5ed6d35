"""Jobs a worker has popped but not started, kept in Redis so that none is lost between pop and start.

RQ's multi-queue pop (BLPOP) takes a job out of its queue and records nothing: a worker that dies, or
whose reply is lost, between the pop and the start leaves the job `queued` in no queue. Here the pop
moves the id into the worker's own `popped` list in the same atomic step (Lua); `claim`
takes it out again as the job starts; and `recover` puts back the popped jobs of every worker whose
`rq:worker:<name>` key has expired (the Redis server's clock judges it). Nothing scans the job index,
so recovery costs the same whatever the load (architecture §5).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis import Redis

from feynman_jobs import keys, redisio
from feynman_jobs.errors import WorkersPaused
from feynman_jobs.queueing import arrivals

logger = logging.getLogger(__name__)

#: The longest a waiting pop goes without looking at every queue, should no wake come from
#: queueing/arrivals.py (Redis unreachable meanwhile, say). A job that arrives is taken at once.
BLOCK_S = 0.5

# rq-compat(rq==3.0.0): these scripts read and write RQ's own job hash fields (status, origin,
# worker_name, started_at), queue lists and pause key by RQ's key names. Remove when RQ records pops
# itself.
# Puts back the ids of a popped list (KEYS[1]) that are still `queued` and in no queue, oldest at the
# front. ARGV[1] is RQ's job key prefix, ARGV[2] its queue key prefix. Shared by pop and recover.
_PUT_BACK = """
local function put_back(list, job_prefix, queue_prefix)
  local ids = redis.call('LRANGE', list, 0, -1)
  local back = {}
  if #ids == 0 then return back end
  for i = #ids, 1, -1 do
    local id = ids[i]
    local job = job_prefix .. id
    local origin = redis.call('HGET', job, 'origin')
    if origin and redis.call('HGET', job, 'status') == 'queued' then
      local queue = queue_prefix .. origin
      if not redis.call('LPOS', queue, id) then
        redis.call('LPUSH', queue, id)
        back[#back + 1] = id
      end
    end
  end
  redis.call('DEL', list)
  return back
end
"""

# KEYS: popped list, workers-with-popped set, RQ's pause key, queue keys in priority order.
# ARGV: worker name, job prefix, queue prefix, '1' when the worker knows its list is empty.
# Returns {queue key, job id}, false, or 'paused' (and takes nothing) while workers are paused.
_POP = (
    _PUT_BACK
    + """
-- Anything still listed was popped by a reply this worker never received: it goes back first.
if ARGV[4] ~= '1' then put_back(KEYS[1], ARGV[2], ARGV[3]) end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'paused' end
redis.call('SADD', KEYS[2], ARGV[1])
for i = 4, #KEYS do
  local id = redis.call('LMOVE', KEYS[i], KEYS[1], 'LEFT', 'RIGHT')
  if id then return {KEYS[i], id} end
end
return false
"""
)

# KEYS: popped list, job hash. ARGV: job id, worker name, start time (RQ's format). 1 when this worker
# may start the job. The start time is RQ's `started_at` from this moment on (the work horse writes its
# own a moment later): the timeline's `started` entry is read from it (lifecycle/timeline.py).
_CLAIM = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'queued' then return 0 end
redis.call('HSET', KEYS[2], 'status', 'started', 'worker_name', ARGV[2], 'started_at', ARGV[3])
return 1
"""


# KEYS: popped list, queue list, job hash. ARGV: job id. Back to the front of its queue, if still ours
# and still `queued`: one canceled since the pop is only forgotten (its id would sit in the queue).
_HAND_BACK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[3], 'status') ~= 'queued' then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
"""

# KEYS: worker key, popped list, workers-with-popped set. ARGV: worker name, job prefix, queue prefix.
_RECOVER = (
    _PUT_BACK
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local back = put_back(KEYS[2], ARGV[2], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[1])
return back
"""
)


def _pop_once(
    connection: Redis, worker_name: str, queue_keys: list[str], known_empty: bool
) -> tuple[str, str] | None:
    popped = keys.worker_popped(worker_name)
    found: Any = connection.eval(
        _POP,
        3 + len(queue_keys),
        popped,
        keys.WORKERS_WITH_POPPED,
        keys.RQ_SUSPENDED,
        *queue_keys,
        worker_name,
        keys.RQ_JOB_PREFIX,
        keys.RQ_QUEUE_PREFIX,
        "1" if known_empty else "0",
    )
    if not found:
        return None
    if found == b"paused":
        raise WorkersPaused("workers are paused: no job taken")
    return redisio.text(found[0]), redisio.text(found[1])


def pop(
    connection: Redis,
    worker_name: str,
    queue_keys: list[str],
    timeout: float | None,
    *,
    known_empty: bool = False,
) -> tuple[str, str] | None:
    """The first job of the first non-empty queue, moved into the worker's popped list: (queue key, id).

    `timeout` None returns at once; otherwise waits up to `timeout` seconds, woken the moment a job
    arrives in any of the queues (queueing/arrivals.py), and looking at every queue at least every
    BLOCK_S even if no wake came. Raises WorkersPaused, taking nothing, while workers are paused
    (`rq suspend`): the pause is looked at in the same atomic step as the pop, so no job is taken once
    a pause has begun.
    `known_empty`: the worker has had the reply of every call that touched its list since it last
    emptied it (the pop that took its last job, then that job's claim, hand-back or drop), so there is
    nothing to put back first.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        found = _pop_once(connection, worker_name, queue_keys, known_empty)
        known_empty = True  # the list held nothing after that call, or `found`
        if found is not None or deadline is None:
            return found
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        # Nothing is moved while waiting (the watchers' moves change nothing): the list stays as known.
        arrivals.for_worker(connection, worker_name, queue_keys).wait(min(BLOCK_S, left))


def claim(connection: Redis, worker_name: str, job_id: str, started_at: str) -> bool:
    """Take a popped job out of the worker's list and mark it started by this worker at `started_at`
    (RQ's text format), atomically.

    False (and nothing written) when it is no longer this worker's to start: canceled meanwhile, or put
    back by recovery.
    """
    claimed = connection.eval(
        _CLAIM, 2, keys.worker_popped(worker_name), keys.rq_job(job_id), job_id, worker_name, started_at
    )
    return bool(claimed)


def hand_back(connection: Redis, worker_name: str, job_id: str, queue_key: str) -> bool:
    """Put a popped job back at the front of its queue, if it is still in this worker's popped list and
    still `queued`."""
    popped = keys.worker_popped(worker_name)
    return bool(connection.eval(_HAND_BACK, 3, popped, queue_key, keys.rq_job(job_id), job_id))


def drop(connection: Redis, worker_name: str, job_id: str) -> None:
    """Forget a popped job the worker cannot run (its data cannot be read)."""
    connection.lrem(keys.worker_popped(worker_name), 1, job_id)


def recover(connection: Redis) -> dict[str, list[str]]:
    """Put back every job popped by a worker whose key has expired; returns worker -> job ids."""
    recovered: dict[str, list[str]] = {}
    for raw in connection.smembers(keys.WORKERS_WITH_POPPED):
        name = redisio.text(raw)
        back: Any = connection.eval(
            _RECOVER,
            3,
            keys.rq_worker(name),
            keys.worker_popped(name),
            keys.WORKERS_WITH_POPPED,
            name,
            keys.RQ_JOB_PREFIX,
            keys.RQ_QUEUE_PREFIX,
        )
        if back:
            recovered[name] = [redisio.text(job_id) for job_id in back]
            logger.warning("put back jobs popped by lost worker %s: %s", name, recovered[name])
    return recovered
