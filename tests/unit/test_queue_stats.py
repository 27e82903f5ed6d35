"""Queue summaries read RQ's keys: depth, registry counts, oldest waiting age, pause flag."""

from __future__ import annotations

from fakeredis import FakeRedis
from rq.suspension import resume, suspend

from feynman_jobs.ops.snapshot import paused, queue_summary
from feynman_jobs.queueing.wiring import get_queue


def test_summary_counts_each_queue_and_its_registries(fake_redis: FakeRedis) -> None:
    low = get_queue("low", fake_redis)
    for _ in range(3):
        low.enqueue("tests.jobs.sleep_for", 0)
    first = low.enqueue("tests.jobs.sleep_for", 0, depends_on=low.enqueue("tests.jobs.sleep_for", 0))
    assert first.get_status().value == "deferred"
    summary = {row["name"]: row for row in queue_summary(fake_redis)}
    assert list(summary) == ["high", "default", "low"]
    assert summary["low"]["depth"] == 4
    assert summary["low"]["deferred"] == 1
    assert summary["low"]["oldest_waiting_s"] is not None
    assert summary["low"]["oldest_waiting_s"] >= 0
    assert summary["high"] == {
        "name": "high",
        "depth": 0,
        "started": 0,
        "scheduled": 0,
        "deferred": 0,
        "failed": 0,
        "finished": 0,
        "canceled": 0,
        "oldest_waiting_s": None,
    }


def test_paused_follows_rq_suspension(fake_redis: FakeRedis) -> None:
    assert paused(fake_redis) is False
    suspend(fake_redis)
    assert paused(fake_redis) is True
    resume(fake_redis)
    assert paused(fake_redis) is False
