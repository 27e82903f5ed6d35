"""Budgets: spend from the ledger, reservations taken and given back atomically, each with a deadline
on the Redis server's clock (real Redis: the Lua reads TIME), and reconciled against job status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

import pytest
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.clock import server_now
from feynman_jobs.costs import budget, ledger, reservations
from feynman_jobs.errors import BudgetExceeded
from feynman_jobs.settings import load_settings
from tests.support import wait_until


def _spend(redis: Redis, micros: int) -> None:
    ledger.record_call(
        redis, model="m", tokens_in=1, tokens_out=1, usd_micros=micros, job_id="j", job_type="t"
    )


class _HourAhead(datetime):
    """The clock of a worker host an hour ahead (libfaketime's FAKETIME=+1h, for these modules only)."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> _HourAhead:
        moment = datetime.now(tz) + timedelta(hours=1)
        return cls.fromtimestamp(moment.timestamp(), tz)


def test_a_host_an_hour_ahead_spends_and_reserves_in_the_redis_server_s_hour(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "datetime", _HourAhead)
    monkeypatch.setattr(budget, "datetime", _HourAhead)
    settings = load_settings(budget_hourly_usd=1.0)
    before = server_now(redis)
    _spend(redis, 300_000)
    with pytest.raises(BudgetExceeded) as caught:  # 1.1 USD in the same hour, by the server's clock
        budget.reserve(redis, settings, "job-1", 800_000, ttl_s=60)
    after = server_now(redis)
    # It waits for the server's next hour: not the host's (already past), nor an hour more.
    assert 0 < caught.value.retry_after_s <= 3601
    counted = {keys.spend("hourly", moment) for moment in (before, after)}
    assert sum(int(redis.get(key) or 0) for key in counted) == 300_000
    [hourly] = [w for w in budget.windows(redis, settings) if w.name == "hourly"]
    assert hourly.spent_micros == 300_000 or before.hour != after.hour
    assert hourly.resets_at is not None
    assert 0 < (hourly.resets_at - server_now(redis)).total_seconds() <= 3600


def test_no_budget_means_no_limit(redis: Redis) -> None:
    budget.reserve(redis, load_settings(), "job-1", 10**12, ttl_s=60)
    assert budget.windows(redis, load_settings()) == []


def test_reservations_count_against_every_configured_budget(redis: Redis) -> None:
    settings = load_settings(budget_daily_usd=1.0, budget_hourly_usd=0.5)
    _spend(redis, 300_000)
    budget.reserve(redis, settings, "job-1", 150_000, ttl_s=60)
    budget.reserve(redis, settings, "job-1", 150_000, ttl_s=60)  # the same member twice holds once
    hourly = {w.name: w for w in budget.windows(redis, settings)}["hourly"]
    assert (hourly.spent_micros, hourly.reserved_micros, hourly.remaining_micros) == (
        300_000,
        150_000,
        50_000,
    )
    assert hourly.resets_at is not None
    assert (hourly.resets_at.minute, hourly.resets_at.second) == (0, 0)
    assert 0 < (hourly.resets_at - datetime.now(UTC)).total_seconds() <= 3600
    with pytest.raises(BudgetExceeded) as caught:
        budget.reserve(redis, settings, "job-2", 60_000, ttl_s=60)
    assert caught.value.budget["budget"] == "hourly"
    assert 0 < caught.value.retry_after_s <= 3601
    assert "hourly budget" in str(caught.value)
    assert budget.release(redis, "job-1") == 150_000
    assert budget.release(redis, "job-1") == 0
    budget.reserve(redis, settings, "job-2", 60_000, ttl_s=60)
    assert {w.name: w.reserved_micros for w in budget.windows(redis, settings)} == {
        "daily": 60_000,
        "hourly": 60_000,
    }


def test_inflight_is_a_separate_pool(redis: Redis) -> None:
    settings = load_settings(budget_total_usd=0.1)
    budget.reserve(redis, settings, "queued", 90_000, ttl_s=60)
    budget.reserve(redis, settings, "call-1", 90_000, ttl_s=60, pool=budget.INFLIGHT)
    with pytest.raises(BudgetExceeded):
        budget.reserve(redis, settings, "call-2", 20_000, ttl_s=60, pool=budget.INFLIGHT)
    [total] = budget.windows(redis, settings)
    assert total.resets_at is None
    assert total.reserved_micros == 90_000


def test_a_reservation_counts_only_until_its_deadline(redis: Redis) -> None:
    settings = load_settings(budget_total_usd=1.0)
    budget.reserve(redis, settings, "killed-call", 600_000, ttl_s=1, pool=budget.INFLIGHT)
    budget.reserve(redis, settings, "live-call", 100_000, ttl_s=600, pool=budget.INFLIGHT)
    assert budget.held(redis, budget.INFLIGHT) == 700_000
    # Nobody releases the first (its work horse was killed): once its deadline passes it holds nothing.
    wait_until(lambda: budget.held(redis, budget.INFLIGHT) == 100_000, 10, "the deadline to pass")
    budget.reserve(redis, settings, "next-call", 900_000, ttl_s=600, pool=budget.INFLIGHT)
    assert sorted(budget.members(redis, budget.INFLIGHT)) == ["live-call", "next-call"]
    assert budget.held(redis, budget.INFLIGHT) == 1_000_000


def test_extending_moves_deadlines_of_held_members_only(redis: Redis) -> None:
    settings = load_settings(budget_total_usd=1.0)
    budget.reserve(redis, settings, "waiting-job", 100_000, ttl_s=1)
    assert budget.extend(redis, 600, ["waiting-job", "released-job"]) == 1
    assert redis.zscore(keys.BUDGET_RESERVED[2], "released-job") is None
    assert budget.held(redis) == 100_000
    assert budget.release(redis, "waiting-job") == 100_000
    assert (budget.held(redis), redis.zcard(keys.BUDGET_RESERVED[2])) == (0, 0)


def test_reconcile_gives_back_what_ended_jobs_and_dead_executions_held(redis: Redis) -> None:
    settings = load_settings(budget_total_usd=10.0)
    for job_id, status in (("waiting", "queued"), ("running", "started"), ("done", "finished")):
        redis.hset(keys.rq_job(job_id), mapping={"status": status, "timeout": 60})
        budget.reserve(redis, settings, job_id, 1_000_000, ttl_s=30)
    budget.reserve(redis, settings, "deleted", 1_000_000, ttl_s=30)
    redis.hset(keys.rq_execution("running", "e1"), "worker_name", "w1")
    budget.reserve(redis, settings, "running:e1:n1", 500_000, ttl_s=600, pool=budget.INFLIGHT)
    budget.reserve(redis, settings, "running:e0:n0", 500_000, ttl_s=600, pool=budget.INFLIGHT)

    assert reservations.reconcile(redis) == {"released": 3, "renewed": 2}
    assert sorted(budget.members(redis)) == ["running", "waiting"]
    assert budget.members(redis, budget.INFLIGHT) == ["running:e1:n1"]
    # Renewed to the job's timeout plus the margin, on the server's clock.
    now = redis.time()[0]
    deadline = redis.zscore(keys.BUDGET_RESERVED[2], "waiting")
    assert deadline is not None
    assert 60 + reservations.MARGIN_S - 2 <= deadline - now <= 60 + reservations.MARGIN_S
