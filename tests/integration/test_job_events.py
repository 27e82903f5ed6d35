"""Every attempt's outcome is recorded by RQ callbacks in the real worker."""

from __future__ import annotations

import pytest
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.clock import parse_utc
from feynman_jobs.lifecycle import outcomes, tallies
from tests.support import Process, enqueue, sample, wait_for


def test_outcomes_counts_and_timings_are_recorded(api: str, worker: Process, redis: Redis) -> None:
    conversation = sample("tcp_congestion_en")
    payload = {"session_id": "ev", "topic": conversation["topic"], "conversation": conversation["messages"]}
    done = [
        wait_for(api, enqueue(api, {"type": "analyze_conversation", "payload": payload})["id"]) for _ in "ab"
    ]
    failing = {
        "type": "vectorize_documents",
        "payload": {"memory_id": "mem-none", "learner_id": "l-1"},
        "max_retries": 1,
    }
    wait_for(api, enqueue(api, failing)["id"], ("failed",), timeout=30)

    tallies.fold(redis)  # as /metrics does before it reads the totals
    raw_counts: dict[bytes, bytes] = redis.hgetall(keys.OUTCOME_COUNTS)  # type: ignore[assignment]
    counts = {key.decode(): int(value) for key, value in raw_counts.items()}
    assert counts == {
        "analyze_conversation|high|finished": 2,
        "vectorize_documents|default|retried": 1,
        "vectorize_documents|default|failed": 1,
    }
    events = outcomes.events_since(redis, 0)
    assert [event["outcome"] for event in events] == ["finished", "finished", "retried", "failed"]
    raw_hist: dict[bytes, bytes] = redis.hgetall(keys.RUN_HISTOGRAM)  # type: ignore[assignment]
    run_hist = {key.decode(): value.decode() for key, value in raw_hist.items()}
    buckets = {field: int(value) for field, value in run_hist.items() if not field.endswith("|sum")}
    assert sum(n for field, n in buckets.items() if field.startswith("analyze_conversation|high|")) == 2
    # Each recorded run and wait time is the status document's own timestamps subtracted.
    for document, event in zip(done, events[:2], strict=True):
        assert event["job_id"] == document["id"]
        assert event["run_s"] == pytest.approx(
            _seconds(document["started_at"], document["ended_at"]), abs=1e-5
        )
        assert event["wait_s"] == pytest.approx(
            _seconds(document["enqueued_at"], document["started_at"]), abs=1e-5
        )
    assert float(run_hist["analyze_conversation|high|sum"]) == pytest.approx(
        sum(event["run_s"] for event in events[:2]), abs=1e-5
    )


def _seconds(start: str, end: str) -> float:
    return (parse_utc(end) - parse_utc(start)).total_seconds()
