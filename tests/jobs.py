"""Jobs used only by tests, enqueued straight through RQ (the API accepts catalog types only)."""

from __future__ import annotations

import os
import time

from rq import get_current_job


def sleep_for(seconds: float) -> dict[str, float]:
    """Sleep in short steps, then say how long; long sleeps exceed a short timeout. Between steps the
    job runs Python code, where a worker slot's timeout or stop lands (processes/deadlines.py)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))
    job = get_current_job()
    assert job is not None
    return {"slept": seconds, "started_at": job.started_at.timestamp() if job.started_at else 0.0}


def block_for(seconds: float) -> float:
    """One blocking call of `seconds` (as a socket read without a timeout would be)."""
    time.sleep(seconds)
    return seconds


def record_start(tag: str) -> str:
    """Note when this job started, in Redis, so tests can order executions."""
    job = get_current_job()
    assert job is not None
    job.connection.rpush("test:starts", tag)
    time.sleep(0.02)
    return tag


def block_until_released(key: str) -> str:
    """Hold the worker busy until a test pushes to `key` (no sleeps: the test decides when)."""
    job = get_current_job()
    assert job is not None
    job.connection.blpop([key], timeout=120)
    return key


def count_and_hold(key: str) -> int:
    """Count this run (INCR `key`), note its pids in `<key>:pids`, then, on the first run only, hold
    the worker until a test pushes to `<key>:release` (a push made just after a kill may still reach
    the killed run); returns the runs counted so far."""
    job = get_current_job()
    assert job is not None
    runs = int(job.connection.incr(key))
    # The process running the job (a worker with slots runs it itself; a forking worker, in its horse).
    job.connection.hset(f"{key}:pids", mapping={"runner": os.getpid(), "parent": os.getppid()})
    if runs == 1:
        job.connection.blpop([f"{key}:release"], timeout=120)
    return runs


def fail_first_time(key: str) -> str:
    """Raise on the first run (SET NX `key`), succeed on any later one."""
    job = get_current_job()
    assert job is not None
    if job.connection.set(key, 1, nx=True):
        raise RuntimeError(f"{key}: the first run fails")
    return "again"


def fail_always(message: str) -> None:
    """Raise, so RQ records a failure (or a retry)."""
    raise RuntimeError(message)


def slow_first_time(marker: str, seconds: float) -> str:
    """Sleep `seconds` on the first run only (so a killed first run can be retried quickly)."""
    job = get_current_job()
    assert job is not None
    job.connection.hset(f"test:pids:{marker}", mapping={"horse": os.getpid(), "worker": os.getppid()})
    if job.connection.set(f"test:first-run:{marker}", 1, nx=True):
        time.sleep(seconds)
        return "first"
    return "again"


def count_runs(key: str, seconds: float) -> int:
    """Count this run in Redis (INCR `key`), then work for `seconds`; returns the runs counted so far.

    If the work horse of the previous run (on this machine) is still alive, note it in `<key>:overlap`:
    two runs at once.
    """
    job = get_current_job()
    assert job is not None
    previous = job.connection.hget(f"{key}:pids", "horse")
    if previous and _alive(int(previous)):
        job.connection.set(f"{key}:overlap", int(previous))
    runs = int(job.connection.incr(key))
    job.connection.hset(f"{key}:pids", mapping={"horse": os.getpid(), "worker": os.getppid()})
    time.sleep(seconds)
    return runs


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
