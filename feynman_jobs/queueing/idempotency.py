"""Idempotency keys: the same key returns the same job, also under concurrent requests."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError
from rq.serializers import JSONSerializer

from feynman_jobs import keys, redisio
from feynman_jobs.errors import IdempotencyKeyInUse
from feynman_jobs.queueing.wiring import JsonJob

#: How long a claimed key survives a request that died before writing its job.
CLAIM_S = 30
#: How long a second request waits for the first request's job to appear.
WAIT_S = 5.0


@dataclass(frozen=True)
class Claim:
    """This request's hold on a key (`key`), or the job another request made with it (`existing`)."""

    key: str | None
    existing: str | None = None


def claim(connection: Redis, key: str | None, job_id: str) -> Claim:
    """Take the key for `job_id` (SET NX), or learn which job already holds it."""
    if not key:
        return Claim(None)
    stored = keys.idempotency(key)
    if connection.set(stored, job_id, nx=True, ex=CLAIM_S):
        return Claim(stored)
    owner = connection.get(stored)
    if owner is None:  # expired between the two calls: try once more
        return claim(connection, key, job_id)
    return Claim(None, existing=redisio.text(owner))


def confirm(pipe: Pipeline, held: Claim, job_id: str, ttl: int) -> None:
    """Make a claim durable, in the same transaction that writes the job."""
    if held.key:
        pipe.set(held.key, job_id, ex=ttl)


def release(connection: Redis, held: Claim) -> None:
    """Give a claim back after a failed write, so a retry of the request can succeed."""
    if held.key:
        with contextlib.suppress(RedisError):
            connection.delete(held.key)


def wait_for_job(connection: Redis, job_id: str) -> JsonJob:
    """The job an earlier request with the same key is writing; it may take a moment to appear."""
    deadline = time.monotonic() + WAIT_S
    while not connection.exists(JsonJob.key_for(job_id)):
        if time.monotonic() > deadline:
            raise IdempotencyKeyInUse(
                "a request with this idempotency key is still being processed; try again"
            )
        time.sleep(0.02)
    job = JsonJob.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert isinstance(job, JsonJob)
    return job
