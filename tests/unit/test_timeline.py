"""A job's timeline as read: the list's entries, with `started` and `finished` of the attempt running or
finished now read from the job hash (nothing writes them to the list), each where it happened."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis import Redis
from rq.job import Job

from feynman_jobs import keys
from feynman_jobs.lifecycle import timeline
from feynman_jobs.queueing.wiring import fetch_job, get_queue


def _job(redis: Redis, **fields: str) -> Job:
    job = get_queue("default", redis).enqueue("tests.jobs.record_start", "t")
    if fields:
        redis.hset(job.key, mapping=fields)  # type: ignore[arg-type]
    return job


def _events(redis: Redis, job: Job, *listed: str) -> list[tuple[Any, ...]]:
    if listed:
        redis.rpush(keys.job_events(job.id), *listed)
    read = timeline.events(redis, fetch_job(job.id, redis))
    return [(event["event"], event["at"][11:19], event.get("worker")) for event in read[1:]]


def _at(clock: str) -> str:
    """An entry's `at` as the list holds it, on a fixed day."""
    return f"2026-12-02T{clock}.000000+00:00"


def _rq(clock: str) -> str:
    """A time as RQ writes it in the job hash."""
    return f"2026-12-02T{clock}.000000Z"


def _entry(event: str, clock: str, **fields: Any) -> str:
    return timeline.entry(event, at=datetime.fromisoformat(_at(clock)), **fields)


def test_the_running_or_finished_attempt_is_read_from_the_job_hash(redis: Redis) -> None:
    queued = _job(redis)
    assert timeline.events(redis, fetch_job(queued.id, redis))[0]["event"] == "enqueued"
    assert _events(redis, queued) == []
    running = _job(redis, status="started", started_at=_rq("10:00:00"), worker_name="w1")
    assert _events(redis, running) == [("started", "10:00:00", "w1")]
    done = {"status": "finished", "started_at": _rq("10:00:00"), "worker_name": "w1"} | {
        "ended_at": _rq("10:00:05")
    }
    finished = _job(redis, **done)
    assert _events(redis, finished) == [("started", "10:00:00", "w1"), ("finished", "10:00:05", None)]
    assert not redis.exists(keys.job_events(finished.id))
    # Deliveries of its end come after it; one of an earlier end delivered before it started, before.
    delivered = _job(redis, **done)
    assert _events(redis, delivered, _entry("webhook", "09:59:00"), _entry("webhook", "10:00:06")) == [
        ("webhook", "09:59:00", None),
        ("started", "10:00:00", "w1"),
        ("finished", "10:00:05", None),
        ("webhook", "10:00:06", None),
    ]


def test_every_attempt_shows_its_start_once(redis: Redis) -> None:
    first_attempt = (
        _entry("started", "09:00:00", worker="w1"),
        _entry("attempt_failed", "09:00:01", type="E", message="m"),
        _entry("retried", "09:00:01"),
    )
    retried = _job(redis, status="started", started_at=_rq("09:00:10"), worker_name="w2")
    assert _events(redis, retried, *first_attempt) == [
        ("started", "09:00:00", "w1"),
        ("attempt_failed", "09:00:01", None),
        ("retried", "09:00:01", None),
        ("started", "09:00:10", "w2"),
    ]
    # The attempt's end is written before RQ changes the status: still `started`, it is not shown twice.
    ending = _job(redis, status="started", started_at=_rq("09:00:00"), worker_name="w1")
    shown = [event for event, _, _ in _events(redis, ending, *first_attempt)]
    assert shown == ["started", "attempt_failed", "retried"]
    again = {
        "status": "finished",
        "started_at": _rq("09:05:00"),
        "worker_name": "w1",
        "ended_at": _rq("09:05:01"),
    }
    requeued = _job(redis, **again)
    after_requeue = (*first_attempt[:2], _entry("failed", "09:00:01"), _entry("requeued", "09:04:00"))
    assert [event for event, _, _ in _events(redis, requeued, *after_requeue)] == [
        "started", "attempt_failed", "failed", "requeued", "started", "finished",
    ]  # fmt: skip
    # A list written before starts were read from the hash: its `started` is the running attempt's.
    older = _job(redis, **{**again, "started_at": _rq("09:00:01"), "ended_at": _rq("09:00:02")})
    assert _events(redis, older, _entry("started", "09:00:00", worker="w1")) == [
        ("started", "09:00:00", "w1"),
        ("finished", "09:00:02", None),
    ]
    old = _job(redis, status="finished", started_at=_rq("09:00:01"), ended_at=_rq("09:00:02"))
    both = (_entry("started", "09:00:00"), _entry("finished", "09:00:02"))
    assert [event for event, _, _ in _events(redis, old, *both)] == ["started", "finished"]
