"""One worker line running several jobs at once (FEYNMAN_WORKER_CONCURRENCY, processes/slots.py)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue, Retry, Worker
from rq.job import Job
from rq.results import Result
from rq.serializers import JSONSerializer

from feynman_jobs.processes import slots
from feynman_jobs.processes.horse import Fence
from feynman_jobs.processes.slots import SlotWorker
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob, JsonQueue, fetch_job, get_queue
from tests.chat_server import FakeProvider, refuse
from tests.support import (
    VENV_BIN,
    Process,
    analyze_body,
    enqueue,
    http,
    start_worker,
    wait_for,
    wait_until,
    work_horses,
)

SLOTS = 3


@pytest.fixture
def three_slots(redis_url: str, redis: Redis, tmp_path: Path) -> Iterator[Process]:
    """The Procfile's worker line with three slots."""
    proc = start_worker(redis_url, tmp_path / "worker.log", redis, {"FEYNMAN_WORKER_CONCURRENCY": str(SLOTS)})
    yield proc
    proc.stop()


def test_three_jobs_run_at_once_and_each_ends_alone(
    api: str, three_slots: Process, redis: Redis, redis_url: str
) -> None:
    default = get_queue("default", redis)
    late = default.enqueue("tests.jobs.sleep_for", 30, job_timeout=8)
    blocked = default.enqueue("tests.jobs.block_for", 9, job_timeout=1)
    stopped = default.enqueue("tests.jobs.sleep_for", 60)
    for job in (late, blocked, stopped):
        wait_for(api, job.id, ("started",), timeout=20)
    # Every slot is busy: what waits now is taken by priority, high first, as slots free up.
    lows = [get_queue("low", redis).enqueue("tests.jobs.record_start", f"low-{i}") for i in range(3)]
    high = get_queue("high", redis).enqueue("tests.jobs.record_start", "high")

    # One worker process (no work horses), three executions, each seen by RQ's tools.
    [worker] = Worker.all(connection=redis)
    assert len(worker.get_current_executions()) == SLOTS
    assert worker.get_state() == "busy"
    assert work_horses(three_slots.proc.pid) == set()
    info = subprocess.run(
        [str(VENV_BIN / "rq"), "info", "--url", redis_url, "-S", "json", "--only-queues"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.search(r"^default\s+\|\S*\s+0, 3 executing", info, flags=re.MULTILINE), info

    # Stop one running job: it ends stopped, its neighbours go on.
    code, _, document = http("POST", f"{api}/api/jobs/{stopped.id}/cancel")
    assert (code, document["action"]) == (202, "stopping")
    assert wait_for(api, stopped.id, ("stopped",), timeout=10)["error"]["type"] == "JobStopped"

    # A job over its timeout fails alone, at its timeout.
    failed = wait_for(api, late.id, ("failed",), timeout=20)
    assert failed["error"]["type"] == "JobTimeoutException"
    assert "8 seconds" in failed["error"]["message"]
    # The limitation (processes/deadlines.py): one blocking call is interrupted only when it returns.
    ended = wait_for(api, blocked.id, ("failed",), timeout=20)
    assert ended["error"]["type"] == "JobTimeoutException"
    job = fetch_job(blocked.id, redis)
    assert job.started_at
    assert job.ended_at
    assert (job.ended_at - job.started_at).total_seconds() >= 8.5

    # The first slot freed took the high job before the low ones queued ahead of it.
    wait_until(lambda: redis.llen("test:starts") == 4, 20, "the waiting jobs to run")
    assert redis.lindex("test:starts", 0) == b"high"
    assert all(fetch_job(j.id, redis).get_status() == "finished" for j in [*lows, high])
    # The worker is idle again, with no execution left behind.
    wait_until(lambda: Worker.all(connection=redis)[0].get_state() == "idle", 10, "the worker to idle")
    assert Worker.all(connection=redis)[0].get_current_executions() == []
    assert redis.zcard("rq:wip:default") == 0


def test_a_warm_stop_waits_for_every_running_job(api: str, three_slots: Process, redis: Redis) -> None:
    jobs = [get_queue("default", redis).enqueue("tests.jobs.sleep_for", 1.5) for _ in range(SLOTS)]
    for job in jobs:
        wait_for(api, job.id, ("started",), timeout=20)
    waiting = get_queue("default", redis).enqueue("tests.jobs.sleep_for", 0)
    began = time.monotonic()
    three_slots.stop()
    assert time.monotonic() - began >= 1.0
    assert [wait_for(api, job.id)["status"] for job in jobs] == ["finished"] * SLOTS
    assert fetch_job(waiting.id, redis).get_status() == "queued"


def test_a_failure_rq_could_not_write_is_settled_by_the_slot(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RQ logs and forgets a failure whose write failed (Redis restarting); the slot reads the status
    afterwards, as a forking worker does after its horse exits, and fails the job for its retry."""
    unwritten: list[str] = []
    write_failure = Worker.handle_job_failure

    def first_write_lost(self: Worker, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        if not unwritten:  # what RQ does when its pipeline raises: log, write nothing, return
            unwritten.append(job.id)
            return
        write_failure(self, job, queue, *args, **kwargs)

    monkeypatch.setattr(Worker, "handle_job_failure", first_write_lost)
    job = get_queue("default", redis).enqueue("tests.jobs.fail_first_time", "test:first", retry=Retry(max=1))
    classes = {"job_class": JsonJob, "queue_class": JsonQueue, "serializer": JSONSerializer}
    worker = SlotWorker(QUEUE_NAMES, connection=redis, slots=2, **classes)
    worker.work(burst=True)
    assert unwritten == [job.id]
    assert fetch_job(job.id, redis).get_status() == "finished"
    results = Job.fetch(job.id, connection=redis, serializer=JSONSerializer).results()
    assert [result.type for result in results] == [Result.Type.SUCCESSFUL]
    assert redis.zcard("rq:wip:default") == 0


@pytest.mark.parametrize(("job", "exits"), [("sleep_for", False), ("block_for", True)])
def test_the_fence_interrupts_every_slot_and_exits_if_one_stays_blocked(
    redis: Redis, monkeypatch: pytest.MonkeyPatch, job: str, exits: bool
) -> None:
    """A worker cut off from Redis (no heartbeat accepted) must not run its jobs past its key: the fence
    interrupts them; one blocked in a single call gets half the margin, then the process exits."""
    monkeypatch.setattr(Fence, "beat", lambda self, sent_at: None)  # every heartbeat lost
    monkeypatch.setattr(slots, "FENCE_MARGIN_S", 2.0)
    exited: list[int] = []
    monkeypatch.setattr(os, "_exit", exited.append)
    queued = get_queue("default", redis).enqueue(f"tests.jobs.{job}", 4)
    classes = {"job_class": JsonJob, "queue_class": JsonQueue, "serializer": JSONSerializer}
    worker = SlotWorker(QUEUE_NAMES, connection=redis, slots=2, **classes)
    worker._fence.limit_s = 1.0
    worker.work(burst=True)
    assert exited == ([1] if exits else [])
    ended = fetch_job(queued.id, redis)
    assert ended.get_status() == "failed"
    assert "JobReaped" in (ended.latest_result().exc_string or "")  # type: ignore[union-attr]


def test_a_stop_reaches_an_analysis_waiting_for_the_model(
    api: str, redis: Redis, redis_url: str, tmp_path: Path, provider: FakeProvider
) -> None:
    """The model call reads in steps (providers/stepped.py): the stop lands while the endpoint still
    holds the request, not when it answers."""
    env = {"FEYNMAN_LLM_BASE_URL": provider.url, "FEYNMAN_LLM_MODEL": "test-model"}
    env["FEYNMAN_WORKER_CONCURRENCY"] = "2"
    worker = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    try:
        provider.script("stop-me", provider.held(refuse(503)))
        body = analyze_body("stop-me")
        body["payload"]["topic"] = "光合作用 stop-me"  # the marker the provider answers by
        job = enqueue(api, body)
        wait_until(lambda: provider.received["stop-me"] == 1, 30, "the model call")
        code, _, document = http("POST", f"{api}/api/jobs/{job['id']}/cancel")
        assert (code, document["action"]) == (202, "stopping")
        assert wait_for(api, job["id"], ("stopped",), timeout=10)["error"]["type"] == "JobStopped"
        assert not provider.release.is_set()  # the endpoint never answered
    finally:
        provider.release.set()
        worker.stop()
