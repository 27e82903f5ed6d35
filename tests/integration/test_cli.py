"""The `feynman-jobs` command against a real Redis, in-process and as a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.cli.main import main
from feynman_jobs.costs import ledger
from feynman_jobs.processes.schedules import PERIODIC
from tests.support import VENV_BIN

PERIODIC_IDS = {periodic.id for periodic in PERIODIC}


def test_enqueue_then_status(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"granularity": "day"}), "utf-8")
    runner = CliRunner()
    enqueued = runner.invoke(
        main, ["--redis-url", redis_url, "enqueue", "rollup_costs", "--payload", f"@{payload}"]
    )
    assert enqueued.exit_code == 0, enqueued.output
    document = json.loads(enqueued.output)
    assert (document["type"], document["queue"], document["status"]) == ("rollup_costs", "low", "queued")
    assert redis.lrange("rq:queue:low", 0, -1) == [document["id"].encode()]
    status = runner.invoke(main, ["--redis-url", redis_url, "status", document["id"]])
    assert status.exit_code == 0
    assert json.loads(status.output)["id"] == document["id"]


def test_errors_are_one_line_and_a_nonzero_exit(redis_url: str, redis: Redis) -> None:
    runner = CliRunner()
    bad = runner.invoke(
        main, ["--redis-url", redis_url, "enqueue", "rollup_costs", "--payload", '{"granularity": 1}']
    )
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        "Error: invalid payload for rollup_costs: #/payload/granularity: Input should be 'hour' or 'day'"
    ]
    missing = runner.invoke(main, ["--redis-url", redis_url, "status", "nope"])
    assert missing.exit_code == 1
    assert "no job with id 'nope'" in missing.output
    assert redis.dbsize() == 0


def test_schedules_sync_is_idempotent_as_a_subprocess(redis_url: str, redis: Redis) -> None:
    for _ in range(2):
        subprocess.run(
            [str(VENV_BIN / "feynman-jobs"), "schedules", "sync"],
            env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin"},
            check=True,
            capture_output=True,
        )
    assert redis.zcard(keys.RQ_SCHEDULER_JOBS) == len(PERIODIC_IDS) == 2  # the hourly and daily rollups
    listed = subprocess.run(
        [str(VENV_BIN / "feynman-jobs"), "--redis-url", redis_url, "schedules", "list"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert {entry["id"] for entry in json.loads(listed)} == PERIODIC_IDS


def test_an_unreachable_redis_is_a_clear_error() -> None:
    result = CliRunner().invoke(main, ["--redis-url", "redis://127.0.0.1:1/0", "status", "some-id"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Redis cannot be reached")


def test_operator_commands_pause_queues_costs_budget(redis_url: str, redis: Redis) -> None:
    runner = CliRunner()
    base = ["--redis-url", redis_url]
    assert runner.invoke(main, [*base, "pause", "--duration", "60"]).output.strip() == "paused for 60 s"
    queues = json.loads(runner.invoke(main, [*base, "queues"]).output)
    assert queues["paused"] is True
    assert [row["name"] for row in queues["queues"]] == ["high", "default", "low"]
    assert runner.invoke(main, [*base, "resume"]).output.strip() == "resumed"
    assert json.loads(runner.invoke(main, [*base, "queues"]).output)["paused"] is False
    ledger.record_call(
        redis, model="m", tokens_in=5, tokens_out=7, usd_micros=250_000, job_id="j", job_type="t"
    )
    [current] = json.loads(runner.invoke(main, [*base, "costs", "--windows", "1"]).output)
    assert (current["calls"], current["tokens_in"], current["usd"]) == (1, 5, 0.25)
    result = CliRunner(env={"FEYNMAN_BUDGET_DAILY_USD": "1"}).invoke(main, [*base, "budget"])
    [daily] = json.loads(result.output)
    assert (daily["budget"], daily["spent_usd"], daily["remaining_usd"]) == ("daily", 0.25, 0.75)
