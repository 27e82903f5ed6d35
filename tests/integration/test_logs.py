"""One log line per job event; JSON lines with FEYNMAN_LOG_FORMAT=json, in worker, CLI and web; no secrets."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

from redis import Redis

from feynman_jobs.logs import JsonFormatter
from feynman_jobs.queueing.wiring import fetch_job
from tests.support import VENV_BIN, Process, start_worker, wait_until

SECRET = "tok-never-in-logs-7f3a"
JSON_ENV = {"FEYNMAN_LOG_FORMAT": "json", "FEYNMAN_API_TOKENS": SECRET}


def cli_enqueue(redis_url: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Enqueue a rollup through the command line; its job id and what it logged."""
    run = subprocess.run(
        [str(VENV_BIN / "feynman-jobs"), "enqueue", "rollup_costs", "--payload", '{"granularity": "hour"}'],
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(run.stdout)["id"], run.stderr


def finished(redis: Redis, job_id: str) -> bool:
    return fetch_job(job_id, redis).get_status(refresh=True) == "finished"


def test_worker_and_cli_write_json_lines_with_the_job_event(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    job_id, cli_log = cli_enqueue(redis_url, JSON_ENV)
    [enqueued] = [json.loads(line) for line in cli_log.splitlines()]
    assert enqueued["message"].startswith(f"enqueued job type=rollup_costs id={job_id} queue=low")
    assert enqueued["level"] == "INFO"
    worker = start_worker(redis_url, tmp_path / "worker.log", redis, JSON_ENV)
    try:
        wait_until(lambda: finished(redis, job_id), 30, "the job to finish")
        wait_until(lambda: f'"job_id": "{job_id}"' in worker.log(), 10, "the job event line")
    finally:
        worker.stop()
    log = worker.log()
    assert SECRET not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    [event] = [line for line in lines if line.get("job_id") == job_id and "outcome" in line]
    assert (event["job_type"], event["queue"], event["outcome"]) == ("rollup_costs", "low", "finished")
    assert event["duration_s"] >= 0
    assert event["logger"] == "feynman_jobs.lifecycle.outcomes"
    assert any(line["logger"].startswith("rq.") for line in lines), "RQ's own lines are JSON too"


def test_text_lines_by_default(redis_url: str, redis: Redis, worker: Process) -> None:
    job_id, cli_log = cli_enqueue(redis_url)
    assert (
        f"INFO feynman_jobs.queueing.writer enqueued job type=rollup_costs id={job_id} queue=low" in cli_log
    )
    wait_until(lambda: finished(redis, job_id), 30, "the job to finish")
    wait_until(lambda: f"id={job_id}" in worker.log(), 10, "the job event line")
    [line] = [
        line for line in worker.log().splitlines() if f"job finished type=rollup_costs id={job_id}" in line
    ]
    assert " queue=low duration_s=" in line


def test_json_formatter_keeps_extra_fields_and_unicode() -> None:
    record = logging.makeLogRecord(
        {"name": "feynman_jobs.x", "levelname": "INFO", "msg": "主题 %s", "args": ("光合作用",)}
    )
    record.job_id = "j-1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "主题 光合作用"
    assert entry["job_id"] == "j-1"
    assert set(entry) == {"time", "level", "logger", "message", "job_id"}
