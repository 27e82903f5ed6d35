"""Idempotency keys: the same key returns the same job, also under concurrent requests.

A key holds `?<job id>` while the request that claimed it is writing that job (for at most CLAIM_S),
then the job id itself. Only the claimant confirms or releases its claim (compare-and-set, under the
writer's WATCH or in Lua), so a request whose claim lapsed can never overwrite another's. A key whose
job no longer exists (expired, deleted) is free again at once.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError

from feynman_jobs import keys, redisio
from feynman_jobs.errors import IdempotencyKeyInUse
from feynman_jobs.queueing.wiring import JsonJob, fetch_job

#: How long a claimed key survives a request that died before writing its job. A write takes
#: milliseconds, and a lapsed claim is safe (the writer's WATCH refuses it); but a Sentinel failover
#: can keep a claim whose job was lost with the old master, and the key answers 409 until it lapses.
CLAIM_S = 10
#: How long a second request waits for the first request's job to be written.
WAIT_S = 5.0
#: What a claimed (not yet confirmed) key's value starts with; job ids never contain it.
CLAIMED = "?"

# KEYS: the key. ARGV: the claim value, CLAIM_S, RQ's job key prefix.
# Returns false when claimed now, else what the key holds (a claim, or a job id whose job exists).
_CLAIM = """
local current = redis.call('GET', KEYS[1])
if current then
  if string.sub(current, 1, 1) == '?' or redis.call('EXISTS', ARGV[3] .. current) == 1 then
    return current
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Claim:
    """This request's hold on a key (`key`, holding `value`), or the job another request made with it."""

    key: str | None
    value: str = ""
    existing: JsonJob | None = None


def claim(connection: Redis, key: str | None, job_id: str) -> Claim:
    """Take the key for `job_id`, or return the job an earlier request made with it.

    While another request is still writing its job, wait up to WAIT_S for it, then raise
    IdempotencyKeyInUse.
    """
    if not key:
        return Claim(None)
    stored, value = keys.idempotency(key), CLAIMED + job_id
    deadline = time.monotonic() + WAIT_S
    while True:
        current: Any = connection.eval(_CLAIM, 1, stored, value, CLAIM_S, keys.RQ_JOB_PREFIX)
        if not current:
            return Claim(stored, value)
        held = redisio.text(current)
        if not held.startswith(CLAIMED):
            try:
                return Claim(None, existing=fetch_job(held, connection))
            except NoSuchJobError:  # deleted just now: the key is free, claim it
                continue
        if time.monotonic() > deadline:
            raise IdempotencyKeyInUse(
                "a request with this idempotency key is still being processed; try again"
            )
        time.sleep(0.02)


def watch(pipe: Pipeline, held: Claim) -> None:
    """Inside the writer's WATCH: make sure the claim is still this request's, or raise."""
    if held.key is None:
        return
    pipe.watch(held.key)
    current = pipe.get(held.key)
    if current is None or redisio.text(current) != held.value:
        raise IdempotencyKeyInUse("this request's hold on its idempotency key lapsed; try again")


def confirm(pipe: Pipeline, held: Claim, job_id: str, ttl: int) -> None:
    """Make a claim durable, in the same transaction that writes the job (after `watch`)."""
    if held.key:
        pipe.set(held.key, job_id, ex=ttl)


def release(connection: Redis, held: Claim) -> None:
    """Give a claim back after a failed write, so a retry of the request can succeed (if still ours)."""
    if held.key:
        with contextlib.suppress(RedisError):
            connection.eval(_RELEASE, 1, held.key, held.value)
