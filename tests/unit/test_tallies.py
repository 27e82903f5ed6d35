"""All-time outcome totals folded from the event stream (real Redis: the fold is Lua): each event
counted once however many processes fold, events from before the fold never counted twice."""

from __future__ import annotations

import threading

import pytest
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.lifecycle import outcomes, tallies
from feynman_jobs.processes.upkeep import Upkeep


def _hash(redis: Redis, key: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = redis.hgetall(key)  # type: ignore[assignment]
    return {field.decode(): value.decode() for field, value in raw.items()}


def _record(redis: Redis, outcome: str, run_s: float | None, wait_s: float | None = 0.01) -> None:
    outcomes.record(redis, job_type="rollup_costs", queue="low", outcome=outcome, wait_s=wait_s, run_s=run_s)


def test_a_fold_counts_each_event_once_into_the_buckets_the_writer_used_to(redis: Redis) -> None:
    # Written by a worker from before the fold: its writer counted it already. (Times are differences
    # of microsecond timestamps, so an event's six decimals hold them exactly.)
    old = {"type": "rollup_costs", "queue": "low", "outcome": "finished", "run_s": "1"}
    redis.xadd(keys.OUTCOME_EVENTS, old)  # type: ignore[arg-type]
    redis.hset(keys.OUTCOME_COUNTS, "rollup_costs|low|finished", 1)
    for run_s in (0.05, 0.050001, 2.5, 4000.0):  # a bound fits its own bucket; past the last, +Inf
        _record(redis, "finished", run_s)
    _record(redis, "retried", None, wait_s=None)
    assert tallies.fold(redis) == 6
    counts = _hash(redis, keys.OUTCOME_COUNTS)
    assert counts == {"rollup_costs|low|finished": "5", "rollup_costs|low|retried": "1"}
    run = _hash(redis, keys.RUN_HISTOGRAM)
    assert {field: value for field, value in run.items() if not field.endswith("sum")} == {
        "rollup_costs|low|0.05": "1",
        "rollup_costs|low|0.1": "1",
        "rollup_costs|low|2.5": "1",
        "rollup_costs|low|+Inf": "1",
    }
    assert float(run["rollup_costs|low|sum"]) == pytest.approx(4002.600001)
    assert _hash(redis, keys.WAIT_HISTOGRAM) == {"rollup_costs|low|0.05": "4", "rollup_costs|low|sum": "0.04"}
    assert tallies.fold(redis) == 0  # nothing new
    assert [event["outcome"] for event in outcomes.events_since(redis, 0)][-1] == "retried"
    assert "tally" not in outcomes.events_since(redis, 0)[-1]


def test_processes_folding_at_once_count_every_event_once(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tallies, "STEP", 7)  # many small steps, interleaved between the folders
    for _ in range(300):
        _record(redis, "finished", 0.2)
    folders = [threading.Thread(target=tallies.fold, args=(redis,)) for _ in range(4)]
    for folder in folders:
        folder.start()
    for folder in folders:
        folder.join(10)
    assert _hash(redis, keys.OUTCOME_COUNTS) == {"rollup_costs|low|finished": "300"}
    _record(redis, "failed", 0.2)
    Upkeep(failure_ttl=60).tick(redis)  # the scheduler folds every tick
    assert _hash(redis, keys.OUTCOME_COUNTS)["rollup_costs|low|failed"] == "1"
    assert float(_hash(redis, keys.RUN_HISTOGRAM)["rollup_costs|low|sum"]) == pytest.approx(60.2)
