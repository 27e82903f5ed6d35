"""FEYNMAN_TIMEZONE: days and hours begin where the operators live, for budgets and rollups alike."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fakeredis import FakeRedis

from feynman_jobs.clock import period_end, period_start
from feynman_jobs.costs import budget, ledger, rollups
from feynman_jobs.errors import ConfigError
from feynman_jobs.settings import load_settings

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_days_begin_at_local_midnight_and_clock_changes_are_kept() -> None:
    at = datetime(2026, 12, 2, 17, 30, tzinfo=UTC)  # 01:30 on 3 December in Shanghai
    assert period_start("day", at, SHANGHAI) == datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
    assert period_end("day", at, SHANGHAI) == datetime(2026, 12, 3, 16, 0, tzinfo=UTC)
    assert period_start("day", at) == datetime(2026, 12, 2, tzinfo=UTC)
    kolkata = ZoneInfo("Asia/Kolkata")  # +05:30: its hours begin at half past, UTC
    assert period_start("hour", at, kolkata) == datetime(2026, 12, 2, 17, 30, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")  # 29 March 2026 has 23 hours there
    start = period_start("day", datetime(2026, 3, 29, 12, tzinfo=UTC), berlin)
    assert (period_end("day", start, berlin) - start).total_seconds() == 23 * 3600
    with pytest.raises(ConfigError, match="timezone: Value error, must be an IANA time zone name"):
        load_settings(timezone="Mars/Olympus")


def test_spend_and_rollups_follow_the_zone(fake_redis: FakeRedis) -> None:
    settings = load_settings(timezone="Asia/Shanghai", budget_daily_usd=1.0)
    late = datetime(2026, 12, 2, 17, 30, tzinfo=UTC)  # already 3 December in Shanghai
    early = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)  # still 2 December there
    for at, micros in ((early, 100_000), (late, 250_000)):
        ledger.record_call(fake_redis, model="m", tokens_in=1, tokens_out=1, usd_micros=micros,
                           job_id="j", job_type="t", at=at, zone=settings.zone)  # fmt: skip
    assert int(fake_redis.get("feynman:spend:day:2026-12-03") or 0) == 250_000
    assert int(fake_redis.get("feynman:spend:day:2026-12-02") or 0) == 100_000
    assert int(fake_redis.get("feynman:spend:hour:2026-12-03T01+0800") or 0) == 250_000
    day = rollups.compute_window(fake_redis, "day", late, settings.zone)
    assert (day["window_start"], day["window_end"], day["usd"]) == (
        "2026-12-02T16:00:00Z",
        "2026-12-03T16:00:00Z",
        0.25,
    )
    [daily] = budget.windows(fake_redis, settings)
    assert daily.resets_at is not None
    assert daily.resets_at.astimezone(SHANGHAI).hour == 0
