"""Maintenance job types are internal: the API refuses them; the scheduler and the CLI still run them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from redis import Redis

from feynman_jobs.queueing.wiring import fetch_job
from tests.support import VENV_BIN, Process, http, wait_until

PUBLIC = "must be one of: analyze_conversation, consolidate_memory, rollup_costs, vectorize_documents"
REAP = {"type": "reap_abandoned_jobs", "payload": {}}
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


def test_the_cli_runs_them_and_no_protective_bound_is_a_parameter(
    redis_url: str, redis: Redis, worker: Process
) -> None:
    def cli(payload: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "feynman-jobs"), "enqueue", "reap_abandoned_jobs", "--payload", payload],
            env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
        )

    # The reaper's staleness is the worker key's expiry in Redis, not a number a caller may lower.
    refused = cli('{"stale_after_s": 10}')
    assert refused.returncode == 1
    assert "#/payload/stale_after_s: Extra inputs are not permitted" in refused.stderr
    assert redis.keys("rq:job:*") == []
    run = cli("{}")
    assert run.returncode == 0, run.stderr
    job = fetch_job(json.loads(run.stdout)["id"], redis)
    wait_until(lambda: job.get_status(refresh=True) == "finished", 30, "the reaper to run")
    assert job.return_value() == {"reaped": {}, "recovered": {}}


def test_the_scheduler_registers_periodic_jobs_with_descriptions_free_of_payload_text(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    scheduler = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler.log")
    try:
        wait_until(
            lambda: redis.zscore("rq:scheduler:scheduled_jobs", "periodic-rollup_costs-hour") is not None,
            30,
            "the scheduler to register its periodic jobs",
        )
    finally:
        scheduler.stop()
    description = redis.hget("rq:job:periodic-rollup_costs-hour", "description")
    # The granularity is one of two words the service chose, never text a caller sent.
    assert description == b"rollup_costs(granularity='hour')"
