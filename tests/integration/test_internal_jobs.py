"""Maintenance job types are internal: the API refuses them; the scheduler and the CLI still run them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from redis import Redis

from feynman_jobs.queueing.wiring import fetch_job
from tests.support import VENV_BIN, Process, http, wait_until

PUBLIC = "must be one of: analyze_conversation, consolidate_memory, rollup_costs, vectorize_documents"
REAP = {"type": "reap_abandoned_jobs", "payload": {"stale_after_s": 10}}
CLEAN = {"type": "clean_registries", "payload": {}}
FORGET = {"type": "delete_learner_memories", "payload": {"learner_id": "l-1"}}


def test_the_api_refuses_internal_types_naming_the_public_ones(api: str, redis: Redis) -> None:
    for body in (REAP, CLEAN, FORGET):
        for path, sent in (("/api/jobs", body), ("/api/batches", {"jobs": [body]}), ("/api/estimate", body)):
            code, _, problem = http("POST", api + path, sent)
            assert code == 422, (path, problem)
            assert problem["type"] == "urn:feynman-jobs:problem:unknown-job-type" or path == "/api/batches"
            assert PUBLIC in [error["detail"] for error in problem["errors"]], problem
    # One internal job makes the whole batch invalid: nothing of it is written.
    rollup = {"type": "rollup_costs", "payload": {"granularity": "hour"}}
    code, _, problem = http("POST", api + "/api/batches", {"jobs": [rollup, REAP]})
    assert code == 422
    assert [error["pointer"] for error in problem["errors"]] == ["#/jobs/1/type"]
    assert redis.keys("rq:job:*") == []


def test_the_cli_enqueues_them_with_protective_bounds_clamped(
    redis_url: str, redis: Redis, worker: Process
) -> None:
    run = subprocess.run(
        [
            str(VENV_BIN / "feynman-jobs"),
            "enqueue",
            "reap_abandoned_jobs",
            "--payload",
            '{"stale_after_s": 10}',
        ],
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    job_id = json.loads(run.stdout)["id"]
    job = fetch_job(job_id, redis)
    assert job.kwargs == {"stale_after_s": 60}
    wait_until(lambda: job.get_status(refresh=True) == "finished", 30, "the reaper to run")
    assert job.return_value() == {"reaped": {}}


def test_the_scheduler_still_runs_them(redis_url: str, redis: Redis, worker: Process, tmp_path: Path) -> None:
    scheduler = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler.log")
    try:

        def ran() -> bool:
            return redis.hget("rq:job:periodic-reap_abandoned_jobs", "status") == b"finished"

        # The reaper runs at once, then every 15 s; registry cleanup waits for the next minute.
        wait_until(ran, 60, "the scheduler's reaper to run")
        assert redis.zscore("rq:scheduler:scheduled_jobs", "periodic-clean_registries") is not None
    finally:
        scheduler.stop()
    assert redis.hget("rq:job:periodic-reap_abandoned_jobs", "description") == b"reap_abandoned_jobs()"
