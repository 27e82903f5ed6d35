"""Every attempt's outcome is recorded by RQ callbacks in the real worker."""

from __future__ import annotations

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.lifecycle import outcomes
from tests.integration.test_end_to_end import enqueue, sample, wait_for
from tests.support import Process


def test_outcomes_counts_and_timings_are_recorded(api: str, worker: Process, redis: Redis) -> None:
    conversation = sample("tcp_congestion_en")
    payload = {"session_id": "ev", "topic": conversation["topic"], "conversation": conversation["messages"]}
    done = [
        wait_for(api, enqueue(api, {"type": "analyze_conversation", "payload": payload})["id"]) for _ in "ab"
    ]
    failing = {"type": "vectorize_documents", "payload": {"memory_id": "mem-none"}, "max_retries": 1}
    wait_for(api, enqueue(api, failing)["id"], ("failed",), timeout=30)

    raw_counts: dict[bytes, bytes] = redis.hgetall(keys.OUTCOME_COUNTS)  # type: ignore[assignment]
    counts = {key.decode(): int(value) for key, value in raw_counts.items()}
    assert counts == {
        "analyze_conversation|high|finished": 2,
        "vectorize_documents|default|retried": 1,
        "vectorize_documents|default|failed": 1,
    }
    events = outcomes.events_since(redis, 0)
    assert [event["outcome"] for event in events] == ["finished", "finished", "retried", "failed"]
    assert all(event["run_s"] >= 0 and event["wait_s"] >= 0 for event in events)
    raw_hist: dict[bytes, bytes] = redis.hgetall(keys.RUN_HISTOGRAM)  # type: ignore[assignment]
    run_hist = {key.decode(): value.decode() for key, value in raw_hist.items()}
    buckets = {field: int(value) for field, value in run_hist.items() if not field.endswith("|sum")}
    assert sum(n for field, n in buckets.items() if field.startswith("analyze_conversation|high|")) == 2
    assert float(run_hist["analyze_conversation|high|sum"]) >= 0
    # The recorded run time matches the status document's own timestamps.
    assert done[0]["started_at"] <= done[0]["ended_at"]
