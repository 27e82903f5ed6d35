"""Budgets: spend from the ledger, reservations taken and given back atomically (Lua: fakeredis[lua])."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakeredis import FakeRedis

from feynman_jobs.costs import budget, ledger
from feynman_jobs.errors import BudgetExceeded
from feynman_jobs.settings import load_settings


def _spend(fake_redis: FakeRedis, micros: int) -> None:
    ledger.record_call(
        fake_redis, model="m", tokens_in=1, tokens_out=1, usd_micros=micros, job_id="j", job_type="t"
    )


def test_no_budget_means_no_limit(fake_redis: FakeRedis) -> None:
    budget.reserve(fake_redis, load_settings(), "job-1", 10**12)
    assert budget.windows(fake_redis, load_settings()) == []


def test_reservations_count_against_every_configured_budget(fake_redis: FakeRedis) -> None:
    settings = load_settings(budget_daily_usd=1.0, budget_hourly_usd=0.5)
    _spend(fake_redis, 300_000)
    budget.reserve(fake_redis, settings, "job-1", 150_000)
    budget.reserve(fake_redis, settings, "job-1", 150_000)  # the same member twice holds once
    hourly = {w.name: w for w in budget.windows(fake_redis, settings)}["hourly"]
    assert (hourly.spent_micros, hourly.reserved_micros, hourly.remaining_micros) == (
        300_000,
        150_000,
        50_000,
    )
    assert hourly.resets_at is not None
    assert (hourly.resets_at.minute, hourly.resets_at.second) == (0, 0)
    assert 0 < (hourly.resets_at - datetime.now(UTC)).total_seconds() <= 3600
    with pytest.raises(BudgetExceeded) as caught:
        budget.reserve(fake_redis, settings, "job-2", 60_000)
    assert caught.value.budget["budget"] == "hourly"
    assert 0 < caught.value.retry_after_s <= 3601
    assert "hourly budget" in str(caught.value)
    assert budget.release(fake_redis, "job-1") == 150_000
    assert budget.release(fake_redis, "job-1") == 0
    budget.reserve(fake_redis, settings, "job-2", 60_000)
    assert {w.name: w.reserved_micros for w in budget.windows(fake_redis, settings)} == {
        "daily": 60_000,
        "hourly": 60_000,
    }


def test_inflight_is_a_separate_pool(fake_redis: FakeRedis) -> None:
    settings = load_settings(budget_total_usd=0.1)
    budget.reserve(fake_redis, settings, "queued", 90_000)
    budget.reserve(fake_redis, settings, "call-1", 90_000, pool=budget.INFLIGHT)
    with pytest.raises(BudgetExceeded):
        budget.reserve(fake_redis, settings, "call-2", 20_000, pool=budget.INFLIGHT)
    [total] = budget.windows(fake_redis, settings)
    assert total.resets_at is None
    assert total.reserved_micros == 90_000
