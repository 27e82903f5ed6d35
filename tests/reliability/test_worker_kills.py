"""SIGKILL of a work horse or of a worker parent mid-job: the job is retried, or finished, exactly once."""

from __future__ import annotations

import time

from rq import Retry

from feynman_jobs.queueing.catalog import CALLBACKS
from feynman_jobs.queueing.wiring import get_queue
from tests.reliability.stack import Stack, executions, sigkill
from tests.support import wait_for, wait_until


def _slow_job(stack: Stack, marker: str, seconds: float) -> str:
    job = get_queue("default", stack.client).enqueue(
        "tests.jobs.slow_first_time", marker, seconds, retry=Retry(max=1, interval=[1]),
        meta={"max_retries": 1}, on_success=CALLBACKS.on_success, on_failure=CALLBACKS.on_failure,
    )  # fmt: skip
    wait_for(stack.base, job.id, ("started",), timeout=30)
    wait_until(lambda: stack.client.exists(f"test:pids:{marker}") == 1, 10, "the job to report its pids")
    return job.id


def test_killing_the_work_horse_retries_the_job(stack: Stack) -> None:
    stack.add_worker()
    job_id = _slow_job(stack, "horse", 60)
    horse = int(stack.client.hget("test:pids:horse", "horse") or 0)
    sigkill(horse)
    killed_at = time.monotonic()
    done = wait_for(stack.base, job_id, timeout=120)
    assert time.monotonic() - killed_at < 120
    assert done["result"] == "again"
    assert done["attempts"] == 2
    assert executions(stack.client)[job_id] == 1  # the killed run never returned


def test_killing_the_worker_parent_lets_the_horse_finish_once(stack: Stack) -> None:
    stack.add_worker()
    stack.add_worker()
    stack.start_scheduler()
    job_id = _slow_job(stack, "parent", 5)
    parent = int(stack.client.hget("test:pids:parent", "worker") or 0)
    sigkill(parent)
    done = wait_for(stack.base, job_id, timeout=120)
    assert done["result"] == "first"
    time.sleep(20)  # the reaper runs every 15 s: it must not run the finished job again
    assert executions(stack.client)[job_id] == 1
    assert wait_for(stack.base, job_id)["attempts"] == 1
