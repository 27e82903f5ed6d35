"""A budget with an unpriced remote model is a configuration error: every process refuses to start,
naming the model and FEYNMAN_PRICES, and `feynman-jobs doctor` reports the same."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner
from redis import Redis

from feynman_jobs.cli.main import main
from tests.support import Process, free_port

#: A remote model (the default FEYNMAN_LLM_MODEL) behind an endpoint, a daily budget, no prices.
UNPRICED = {"FEYNMAN_LLM_BASE_URL": "http://127.0.0.1:9/v1", "FEYNMAN_BUDGET_DAILY_USD": "5"}


def test_processes_refuse_to_start_and_doctor_names_the_unpriced_model(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    web = Process("web", {"REDIS_URL": redis_url, "PORT": str(free_port()), **UNPRICED}, tmp_path / "web.log")
    worker = Process("worker", {"REDIS_URL": redis_url, **UNPRICED}, tmp_path / "worker.log")
    try:
        for process in (web, worker):
            try:
                code = process.proc.wait(60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{process.name} started:\n{process.log()}") from None
            assert code != 0
            assert "'gpt-4o-mini' (FEYNMAN_LLM_MODEL)" in process.log()
            assert "FEYNMAN_PRICES has no price" in process.log()
        assert not redis.scard("rq:workers")
    finally:
        web.stop()
        worker.stop()

    doctor = CliRunner(env=UNPRICED).invoke(main, ["--redis-url", redis_url, "doctor"])
    assert doctor.exit_code == 1
    [line] = [line for line in doctor.output.splitlines() if "prices" in line]
    assert "FAIL" in line
    assert "'gpt-4o-mini' (FEYNMAN_LLM_MODEL)" in line
    assert "FEYNMAN_BUDGET_DAILY_USD" in line
    priced = {
        **UNPRICED,
        "FEYNMAN_PRICES": json.dumps({"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}),
    }
    result = CliRunner(env=priced).invoke(main, ["--redis-url", redis_url, "budget"])
    assert result.exit_code == 0, result.output
