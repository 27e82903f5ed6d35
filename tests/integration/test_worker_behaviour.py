"""How the real worker treats jobs: retries with backoff, priority, timeouts, JSON everywhere."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import zlib
from datetime import datetime, timedelta
from pathlib import Path

from redis import Redis
from rq.results import Result

from feynman_jobs import keys, redisio
from feynman_jobs.processes import schedules
from feynman_jobs.queueing.wiring import JsonQueue, fetch_job, get_queue
from tests.support import (
    SLOTS_AND_FORKING,
    VENV_BIN,
    Process,
    analyze_body,
    enqueue,
    http,
    sample,
    wait_for,
    wait_until,
)

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


def test_a_failing_job_retries_with_backoff_then_fails_with_its_error(
    api: str, worker: Process, redis: Redis
) -> None:
    job = enqueue(
        api,
        {
            "type": "vectorize_documents",
            "payload": {"memory_id": "mem-missing", "learner_id": "l-1"},
            "max_retries": 2,
        },
    )
    assert (job["max_retries"], job["retries_left"]) == (2, 2)
    waiting = wait_for(api, job["id"], ("scheduled",), timeout=20)
    assert waiting["retries_left"] == 1
    assert waiting["attempts"] == 1
    assert waiting["error"]["type"] == "MemoryNotFound"

    failed = wait_for(api, job["id"], ("failed",), timeout=30)
    assert failed["attempts"] == 3
    assert failed["retries_left"] == 0
    assert failed["error"] == {
        "type": "MemoryNotFound",
        "message": "no memory 'mem-missing' for this learner",
    }
    assert "Traceback" not in json.dumps(failed)

    # Each attempt's error is kept; the gaps between attempts follow the 2 s, 4 s backoff, less the
    # fraction of a second RQ's scheduled registry drops (it keeps whole seconds, truncated).
    attempts = fetch_job(job["id"], redis).meta["attempt_errors"]
    assert [attempt["type"] for attempt in attempts] == ["MemoryNotFound"] * 3
    times = [datetime.fromisoformat(attempt["at"]).timestamp() for attempt in attempts]
    assert times[1] - times[0] >= 1.0
    assert times[2] - times[1] >= 3.0


@SLOTS_AND_FORKING
def test_a_high_job_starts_before_a_backlog_of_low_jobs(api: str, worker: Process, redis: Redis) -> None:
    low = get_queue("low", redis)
    backlog = [low.enqueue("tests.jobs.record_start", f"low-{i}") for i in range(50)]
    conversation = sample("photosynthesis_zh")
    payload = {
        "session_id": "urgent",
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
    }
    urgent = enqueue(api, {"type": "analyze_conversation", "payload": payload})
    done = wait_for(api, urgent["id"])
    wait_until(lambda: redis.llen("test:starts") == 50, 60, "the low backlog to run")
    for job in backlog:
        job.refresh()

    def at(stamp: str) -> datetime:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).replace(tzinfo=None)

    urgent_queued, urgent_start = at(done["enqueued_at"]), at(done["started_at"])
    starts = [job.started_at.replace(tzinfo=None) for job in backlog if job.started_at]
    # Low jobs were still waiting when the urgent one started: the order was a choice, not luck...
    assert sum(start > urgent_start for start in starts) >= 10
    # ...and the next free slot took it: at most one low job (being dequeued) started in between.
    assert sum(urgent_queued < start < urgent_start for start in starts) <= 1


@SLOTS_AND_FORKING
def test_a_job_over_its_timeout_fails_and_the_worker_carries_on(
    api: str, worker: Process, redis: Redis
) -> None:
    queue = get_queue("default", redis)
    slow = queue.enqueue("tests.jobs.sleep_for", 30, job_timeout=1)
    failed = wait_for(api, slow.id, ("failed",), timeout=30)
    assert failed["error"]["type"] == "JobTimeoutException"
    assert "1" in failed["error"]["message"]
    quick = queue.enqueue("tests.jobs.sleep_for", 0)
    assert wait_for(api, quick.id)["result"]["slept"] == 0


def test_job_data_in_redis_is_json(api: str, worker: Process, redis: Redis) -> None:
    conversation = sample("gradient_descent_mixed")
    payload = {"session_id": "json", "topic": conversation["topic"], "conversation": conversation["messages"]}
    job = enqueue(api, {"type": "analyze_conversation", "payload": payload, "meta": {"ticket": 7}})
    raw: dict[bytes, bytes] = redis.hgetall(f"rq:job:{job['id']}")  # type: ignore[assignment]
    data = json.loads(zlib.decompress(raw[b"data"]).decode())
    assert data[0] == "feynman_jobs.jobs.analyze.analyze_conversation"
    assert data[3]["topic"] == conversation["topic"]
    assert json.loads(raw[b"meta"])["user"] == {"ticket": 7}
    wait_for(api, job["id"])
    [(_, fields)] = redisio.xrevrange(redis, Result.get_key(job["id"]), count=1)
    # RQ base64-wraps the serialized return value in its result stream; inside it is JSON.
    assert json.loads(base64.b64decode(fields[b"return_value"]))["session_id"] == "json"


def test_rq_info_sees_every_queue_after_api_traffic_only(api: str, redis_url: str, redis: Redis) -> None:
    conversation = sample("photosynthesis_zh")
    consolidate = {
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
        "learner_id": "l-1",
    }
    enqueue(api, analyze_body("info"))  # high
    enqueue(api, {"type": "consolidate_memory", "payload": consolidate})  # default (and its follow-up)
    code, _, batch = http("POST", api + "/api/batches", {"jobs": [ROLLUP, {**ROLLUP, "delay_s": 600}]})
    assert code == 202, batch
    info = subprocess.run(
        [str(VENV_BIN / "rq"), "info", "--url", redis_url, "-S", "json", "--only-queues"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # One line per queue RQ knows of: "<name> |<bar> <waiting>, <n> executing, ..."; a job waits in each.
    listed = dict(re.findall(r"^(\w+)\s+\|\S*\s+(\d+),", info, flags=re.MULTILINE))
    assert listed == {"high": "1", "default": "1", "low": "1"}, info
    assert {queue.name for queue in JsonQueue.all(connection=redis)} == {"high", "default", "low"}


def test_the_scheduler_registers_periodic_jobs_once_and_runs_due_jobs_as_json(
    redis_url: str, redis: Redis, worker: Process, tmp_path: Path, api: str
) -> None:
    first = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler-1.log")
    second = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler-2.log")
    try:
        wait_until(
            lambda: (
                "periodic-rollup_costs-day" in first.log() and "periodic-rollup_costs-day" in second.log()
            ),
            30,
            "both schedulers to sync",
        )
        ids = sorted(redisio.text(member) for member in redis.zrange(keys.RQ_SCHEDULER_JOBS, 0, -1))
        assert ids == sorted(periodic.id for periodic in schedules.PERIODIC)
        raw = redis.hget("rq:job:periodic-rollup_costs-hour", "data")
        assert isinstance(raw, bytes)
        assert json.loads(zlib.decompress(raw))[3] == {"granularity": "hour"}

        # A job due now is moved to its queue by rqscheduler and run by the worker.
        due = schedules.scheduler(redis).enqueue_at(
            datetime.utcnow() - timedelta(seconds=1),
            "feynman_jobs.jobs.rollup.rollup_costs",
            granularity="day",
        )
        done = wait_for(api, due.id, timeout=30)
        assert done["type"] == "rollup_costs"
        assert done["result"]["granularity"] == "day"
        code, _, _ = http("GET", f"{api}/api/jobs/{due.id}")
        assert code == 200
    finally:
        first.stop()
        second.stop()
    assert redis.zcard(keys.RQ_SCHEDULER_JOBS) == len(schedules.PERIODIC)
