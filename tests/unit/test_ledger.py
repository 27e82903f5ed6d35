"""The cost ledger: atomic records, per-job totals, idempotent rollups (fakeredis: no Lua runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fakeredis import FakeRedis

from feynman_jobs import keys
from feynman_jobs.costs import ledger, rollups
from feynman_jobs.settings import Price

PRICES = {"gpt-4o-mini": Price(input_per_mtok=0.15, output_per_mtok=0.6)}


def test_cost_comes_from_the_price_table() -> None:
    assert ledger.cost_usd_micros(PRICES, "gpt-4o-mini", 1_000_000, 1_000_000) == 750_000
    assert ledger.cost_usd_micros(PRICES, "gpt-4o-mini", 1000, 500) == 450
    assert ledger.cost_usd_micros(PRICES, "unpriced-model", 1000, 500) == 0


def _record(fake_redis: FakeRedis, at: datetime, model: str, job: str, tokens_in: int) -> None:
    usd = ledger.cost_usd_micros(PRICES, model, tokens_in, 10)
    call = {"model": model, "tokens_in": tokens_in, "tokens_out": 10, "usd_micros": usd}
    ledger.record_call(fake_redis, **call, job_id=job, job_type="t", at=at)  # type: ignore[arg-type]


def test_rollups_sum_the_window_and_are_idempotent(fake_redis: FakeRedis) -> None:
    hour = datetime(2026, 11, 23, 10, tzinfo=UTC)
    _record(fake_redis, hour - timedelta(seconds=1), "local", "d", 7000)  # previous window
    _record(fake_redis, hour + timedelta(minutes=1), "gpt-4o-mini", "a", 1000)
    _record(fake_redis, hour + timedelta(minutes=59, seconds=59), "gpt-4o-mini", "b", 3000)
    _record(fake_redis, hour + timedelta(hours=1), "gpt-4o-mini", "c", 5000)  # next window
    first = rollups.rollup_window(fake_redis, "hour", hour + timedelta(minutes=30))
    assert first["window_start"] == "2026-11-23T10:00:00Z"
    assert (first["calls"], first["tokens_in"], first["tokens_out"]) == (2, 4000, 20)
    assert first["usd"] == (150 + 6 + 450 + 6) / 1_000_000
    assert rollups.rollup_window(fake_redis, "hour", hour) == first
    day = rollups.rollup_window(fake_redis, "day", hour)
    assert (day["calls"], day["tokens_in"]) == (4, 16000)
    assert {row["model"] for row in day["by_model_and_type"]} == {"gpt-4o-mini", "local"}


def test_totals_count_by_model_and_type_and_per_job(fake_redis: FakeRedis) -> None:
    now = datetime.now(UTC)
    _record(fake_redis, now, "gpt-4o-mini", "a", 100)
    _record(fake_redis, now, "gpt-4o-mini", "a", 300)
    [row] = ledger.totals(fake_redis)
    assert row == {"model": "gpt-4o-mini", "job_type": "t", "calls": 2, "tokens_in": 400} | {
        "tokens_out": 20,
        "usd_micros": 72,
    }
    assert fake_redis.hgetall(keys.job_cost("a"))[b"tokens_in"] == b"400"


def test_a_late_rollup_catches_up_on_missed_windows(fake_redis: FakeRedis) -> None:
    now = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    for hours_ago in (6, 4, 1, 0):
        _record(fake_redis, now - timedelta(hours=hours_ago), "gpt-4o-mini", f"j{hours_ago}", 1000)
    first = rollups.catch_up(fake_redis, "hour", now)
    assert [w["window_start"][11:13] for w in first] == ["09", "10", "11", "12", "13", "14", "15"]
    assert [w["calls"] for w in first] == [1, 0, 1, 0, 0, 1, 1]
    # Five hours later nothing ran meanwhile: the next run rolls up every window it missed.
    later = rollups.catch_up(fake_redis, "hour", now + timedelta(hours=5))
    assert [w["window_start"][11:13] for w in later] == ["15", "16", "17", "18", "19", "20"]
    assert later[0]["calls"] == 1
    stored = rollups.stored(fake_redis, "hour", now - timedelta(days=1), now + timedelta(days=1))
    assert len(stored) == 12
    assert sum(w["calls"] for w in stored) == 4
