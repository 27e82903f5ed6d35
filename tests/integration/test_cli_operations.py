"""`feynman-jobs wait` and `feynman-jobs doctor` against a real Redis, workers and scheduler."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from rq import Queue

from feynman_jobs.cli.main import main
from feynman_jobs.queueing.wiring import get_queue
from tests.support import VENV_BIN, Process, wait_until


def cli(redis_url: str, *args: str) -> tuple[int, str, str]:
    """Run the command in-process; exit code, stdout and stderr."""
    result = CliRunner().invoke(main, ["--redis-url", redis_url, *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def scheduler(redis_url: str, redis: Redis, tmp_path: Path) -> Iterator[Process]:
    """The Procfile's `scheduler` process, once rqscheduler has announced itself."""
    proc = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler.log")
    wait_until(lambda: bool(redis.keys("rq:scheduler_instance:*")), 30, "rqscheduler to register")
    yield proc
    proc.stop()


def test_wait_prints_the_finished_job(redis_url: str, redis: Redis, worker: Process) -> None:
    code, out, _ = cli(redis_url, "enqueue", "rollup_costs", "--payload", '{"granularity": "hour"}')
    assert code == 0
    job_id = json.loads(out)["id"]
    code, out, err = cli(redis_url, "wait", job_id, "--interval", "0.1")
    assert code == 0, err
    document = json.loads(out)
    assert (document["id"], document["status"]) == (job_id, "finished")
    assert document["result"]["granularity"] == "hour"


def test_wait_exits_nonzero_when_the_job_fails(redis_url: str, redis: Redis, worker: Process) -> None:
    job = get_queue("default", redis).enqueue("tests.jobs.fail_always", "the model is down")
    run = subprocess.run(
        [str(VENV_BIN / "feynman-jobs"), "wait", job.id, "--interval", "0.1"],
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert json.loads(run.stdout)["status"] == "failed"
    assert run.stderr.strip().splitlines()[-1] == (
        f"Error: job {job.id} failed: RuntimeError: the model is down"
    )


def test_wait_gives_up_after_its_timeout(redis_url: str, redis: Redis) -> None:
    job = get_queue("low", redis).enqueue("tests.jobs.sleep_for", 0)
    code, _, err = cli(redis_url, "wait", job.id, "--timeout", "0.3", "--interval", "0.1")
    assert code == 1
    assert err.strip().splitlines()[-1] == f"Error: job {job.id} is still queued after 0.3 s"


def test_doctor_names_every_problem_of_a_broken_setup(redis_url: str, redis: Redis) -> None:
    # A client that forgot the JSON serializer: plain RQ's default format, which our workers refuse.
    foreign = Queue("default", connection=redis).enqueue("tests.jobs.sleep_for", 0)
    get_queue("default", redis).enqueue("tests.jobs.sleep_for", 0)
    code, out, err = cli(redis_url, "doctor")
    assert code == 1
    lines = out.splitlines()
    assert "FAIL workers: no rq worker is registered: start the Procfile's `worker` process" in lines
    assert "FAIL scheduler: no rqscheduler is running: periodic jobs (cost rollups) will not run" in lines
    [serializer] = [line for line in lines if " serializer: " in line]
    assert serializer.startswith(f"FAIL serializer: 1 job(s) hold data that is not JSON ({foreign.id})")
    assert "ok   versions: rq 3.0.0 (pinned 3.0.0)" in lines
    # The test Redis runs without append-only persistence: a finding, like the rest.
    assert "FAIL redis-persistence: append-only persistence is off (appendonly no)" in out
    assert "WARN access: anonymous mode" in out  # a warning, not a problem
    assert err.strip() == "Error: 4 problem(s) found"


def test_doctor_passes_on_a_healthy_setup_as_a_subprocess(
    redis_url: str, redis: Redis, worker: Process, scheduler: Process
) -> None:
    get_queue("low", redis).enqueue("tests.jobs.sleep_for", 0)
    redis.config_set("appendonly", "yes")
    try:
        run = subprocess.run(
            [str(VENV_BIN / "feynman-jobs"), "--redis-url", redis_url, "doctor"],
            env={**os.environ, "FEYNMAN_API_TOKENS": "doctor-token-0123456789"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        redis.config_set("appendonly", "no")
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert all(line.startswith("ok   ") for line in lines), lines
    assert "ok   workers: 1 alive" in lines
    assert "ok   scheduler: 1 rqscheduler process(es) alive" in lines
    assert "ok   redis-replication: 0 replica(s) online; an enqueue waits for 0 (no replica: " in run.stdout


def test_doctor_on_an_unreachable_redis() -> None:
    code, out, _ = cli("redis://127.0.0.1:1/0", "doctor")
    assert code == 1
    assert out.startswith("FAIL redis: cannot be reached")
