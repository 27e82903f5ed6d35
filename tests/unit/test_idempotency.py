"""Idempotency claims on a real Redis: a claim is confirmed only by its owner, and a key whose job is
gone is free again at once."""

from __future__ import annotations

import pytest
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.errors import IdempotencyKeyInUse
from feynman_jobs.queueing import idempotency, writer
from feynman_jobs.queueing.catalog import OPERATORS
from feynman_jobs.queueing.planning import plan_job
from feynman_jobs.queueing.requests import parse_enqueue_request
from feynman_jobs.queueing.wiring import fetch_job
from feynman_jobs.settings import load_settings

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}, "idempotency_key": "nightly"}


def _write(redis: Redis, held: idempotency.Claim, job_id: str) -> None:
    [plan] = plan_job(parse_enqueue_request(ROLLUP), load_settings(), audiences=OPERATORS)
    plan = type(plan)(**{**plan.__dict__, "job_id": job_id})
    writer.write(redis, [plan], claims=[(held, job_id)], ttl=3600)


def test_a_claim_is_confirmed_by_its_owner_only(redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(idempotency, "WAIT_S", 0.2)
    first = idempotency.claim(redis, "nightly", "job-a")
    with pytest.raises(IdempotencyKeyInUse):  # a second request while the first is writing
        idempotency.claim(redis, "nightly", "job-b")
    # The first request stalls past its claim; a second one claims the key and writes its job.
    redis.delete(keys.idempotency("nightly"))
    second = idempotency.claim(redis, "nightly", "job-b")
    with pytest.raises(IdempotencyKeyInUse):
        _write(redis, first, "job-a")
    assert not redis.exists(keys.rq_job("job-a"))
    idempotency.release(redis, first)  # not the owner: changes nothing
    _write(redis, second, "job-b")
    assert redis.get(keys.idempotency("nightly")) == b"job-b"
    assert idempotency.claim(redis, "nightly", "job-c").existing == fetch_job("job-b", redis)


def test_a_key_whose_job_is_gone_is_free_again(redis: Redis) -> None:
    held = idempotency.claim(redis, "nightly", "job-a")
    _write(redis, held, "job-a")
    fetch_job("job-a", redis).delete()
    again = idempotency.claim(redis, "nightly", "job-b")
    assert (again.key, again.existing) == (keys.idempotency("nightly"), None)
    assert redis.get(keys.idempotency("nightly")) == b"?job-b"
