"""Lost work horses, worker parents and hosts: every job runs again or fails as abandoned, within the
documented bound, and never runs twice at once."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from rq import Retry
from rq.job import Job

from feynman_jobs.queueing.catalog import CALLBACKS
from feynman_jobs.queueing.wiring import fetch_job, get_queue
from tests.chat_server import FakeProvider, model_answer, refuse
from tests.reliability.stack import Stack, executions, sigkill
from tests.support import alive, analyze_body, enqueue, http, wait_for, wait_until, work_horses

#: The bound docs/reliability.md promises: a lost worker's job leaves `started` within 2 minutes.
BOUND_S = 120

#: These tests are about work horses (processes/horse.py): one job per worker, in a forked horse. Slots
#: (threads) have no horse to kill; tests/integration/test_slots.py covers them.
FORKING = {"FEYNMAN_WORKER_CONCURRENCY": "1"}


def _slow_job(stack: Stack, key: str, seconds: float, retries: int) -> Job:
    """A job that counts its runs in Redis (`key`) and then works for `seconds`."""
    job = get_queue("default", stack.client).enqueue(
        "tests.jobs.count_runs", key, seconds, retry=Retry(max=retries, interval=[1]) if retries else None,
        meta={"max_retries": retries}, on_success=CALLBACKS.on_success, on_failure=CALLBACKS.on_failure,
    )  # fmt: skip
    wait_for(stack.base, job.id, ("started",), timeout=60)
    wait_until(lambda: stack.client.exists(f"{key}:pids") == 1, 10, "the job to report its pids")
    return job


def _status(stack: Stack, job_id: str) -> str:
    return str(http("GET", f"{stack.base}/api/jobs/{job_id}")[2]["status"])


def test_killing_the_work_horse_retries_the_job(stack: Stack) -> None:
    stack.add_worker(FORKING)
    job = _slow_job(stack, "runs:horse", 60, retries=1)
    sigkill(int(stack.client.hget("runs:horse:pids", "horse") or 0))
    done = wait_for(stack.base, job.id, timeout=BOUND_S)
    assert (done["result"], done["attempts"]) == (2, 2)
    assert executions(stack.client)[job.id] == 1  # the killed run never returned
    [killed] = fetch_job(job.id, stack.client).meta["attempt_errors"]
    assert (killed["type"], "signal 9" in killed["message"]) == ("WorkHorseKilled", True)


def test_a_killed_worker_parent_takes_its_horse_along_and_the_job_runs_once_more(
    stack: Stack, provider: FakeProvider
) -> None:
    marker = "光合作用"  # in the analysis prompt's topic
    # The first model call is still under way when its worker dies; the retry gets an answer.
    provider.script(marker, provider.held(refuse(503)), model_answer)
    env = {"FEYNMAN_LLM_BASE_URL": provider.url, "FEYNMAN_LLM_MODEL": "test-model", **FORKING}
    stack.start_scheduler()
    stack.add_worker(env)
    job = enqueue(stack.base, analyze_body("parent-killed"))
    wait_until(lambda: provider.received[marker] == 1, 60, "the model call to be under way")
    worker_name = http("GET", f"{stack.base}/api/jobs/{job['id']}")[2]["worker_name"]
    parent = stack.worker_pid(worker_name)
    [horse] = work_horses(parent)

    os.kill(parent, signal.SIGKILL)  # the parent alone, as the OOM killer or a careless supervisor does
    killed_at = time.monotonic()
    wait_until(lambda: not alive(horse), 10, "the work horse to die with its parent")
    horse_gone_s = time.monotonic() - killed_at
    provider.release.set()  # the abandoned request is answered to nobody
    stack.add_worker(env)  # the supervisor starts a replacement

    wait_until(lambda: _status(stack, job["id"]) != "started", BOUND_S, "the job to leave started")
    left_started_s = time.monotonic() - killed_at
    done = wait_for(stack.base, job["id"], timeout=BOUND_S)
    print(f"horse gone after {horse_gone_s:.2f} s; job left started after {left_started_s:.1f} s")
    assert done["attempts"] == 2
    assert [error["type"] for error in fetch_job(job["id"], stack.client).meta["attempt_errors"]] == [
        "AbandonedJobError"
    ]
    # Two requests, one answer delivered, never two at once; only the answered call was paid for.
    assert (provider.received[marker], provider.answered[marker], provider.max_in_flight) == (2, 1, 1)
    assert done["cost"]["calls"] == 1


def test_a_lost_host_s_jobs_leave_started_within_two_minutes_while_high_holds_minutes_of_work(
    stack: Stack,
) -> None:
    stack.start_scheduler()
    hosts = [stack.add_worker(FORKING), stack.add_worker(FORKING)]
    retried = _slow_job(stack, "runs:retried", 600, retries=1)
    abandoned = _slow_job(stack, "runs:abandoned", 600, retries=0)
    # Ten minutes of urgent work arrive, and no worker is free to take any of it.
    high = get_queue("high", stack.client)
    high.enqueue_many([high.prepare_data("tests.jobs.sleep_for", (1,)) for _ in range(600)])

    horses = [
        int(stack.client.hget(f"{key}:pids", "horse") or 0) for key in ("runs:retried", "runs:abandoned")
    ]
    for host in hosts:  # the parent first: a living parent would see its horse die and retry the job itself
        host.stop(signal.SIGKILL)  # the worker parent and everything in its process group
    for horse in horses:
        with contextlib.suppress(ProcessLookupError):  # gone already with its parent
            sigkill(horse)
    lost_at = time.monotonic()
    wait_until(
        lambda: _status(stack, retried.id) != "started" and _status(stack, abandoned.id) != "started",
        BOUND_S,
        "both jobs of the lost host to leave started",
    )
    print(f"jobs of the lost host left started after {time.monotonic() - lost_at:.1f} s")

    # RQ writes the retry's status a moment before the rest of it: read it once all has landed.
    wait_until(
        lambda: http("GET", f"{stack.base}/api/jobs/{retried.id}")[2]["retries_left"] == 0, 10, "the retry"
    )
    again = http("GET", f"{stack.base}/api/jobs/{retried.id}")[2]
    assert (again["status"], again["attempts"], again["retries_left"]) == ("scheduled", 1, 0)
    assert again["error"]["type"] == "AbandonedJobError"
    failed = wait_for(stack.base, abandoned.id, ("failed",))
    assert failed["error"]["type"] == "AbandonedJobError"
    assert "stopped heartbeating" in failed["error"]["message"]
    assert high.count == 600  # nothing ran: recovery waited behind none of it
    assert [stack.client.get(key) for key in ("runs:retried", "runs:abandoned")] == [b"1", b"1"]


def test_a_redis_outage_mid_job_does_not_get_the_running_job_reaped(stack: Stack) -> None:
    stack.start_scheduler()
    stack.add_worker(FORKING)
    stack.add_worker(FORKING)  # idle: would take the job if the reaper wrongly gave it back
    # Longer than the worker key's 70 s TTL, counted from before the outage.
    job = _slow_job(stack, "runs:outage", 80, retries=1)
    stack.stop_redis()
    time.sleep(12)  # longer than the 10 s between heartbeats: one of them meets the outage
    stack.start_redis()
    done = wait_for(stack.base, job.id, timeout=180)
    assert (done["result"], done["attempts"]) == (1, 1)
    assert stack.client.get("runs:outage") == b"1"
