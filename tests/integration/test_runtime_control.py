"""Budgets and rate limits set at run time through the API and the CLI: stored in Redis, in force in
every process at once (gunicorn's workers, the CLI, this test process), operators only, each change
recorded with the credential's fingerprint."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from feynman_jobs.cli.main import main
from feynman_jobs.costs import ledger
from feynman_jobs.costs.ratelimit import ProviderLimiter
from feynman_jobs.errors import HoldJob
from feynman_jobs.settings import load_settings
from feynman_jobs.web.auth import fingerprint
from tests.support import analyze_body, http, start_web

CLIENT = "client-token-0123456789"
ADMIN = "admin-token-0123456789ab"
#: The offline analyzer priced so that one analysis of the sample is estimated at about $0.7.
PRICED = {"local-heuristic-analyzer": {"input_per_mtok": 1000, "output_per_mtok": 1000}}


def test_budgets_and_limits_are_steered_at_run_time_by_operators(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    env = {
        "FEYNMAN_API_TOKENS": CLIENT,
        "FEYNMAN_ADMIN_TOKENS": ADMIN,
        "FEYNMAN_PRICES": json.dumps(PRICED),
        "FEYNMAN_LLM_RPH": "100",
        "FEYNMAN_TIMEZONE": "Asia/Shanghai",
    }
    web, base = start_web(redis_url, tmp_path / "web.log", env)
    client = {"Authorization": f"Bearer {CLIENT}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    admin_name = f"admin-token:{fingerprint(ADMIN)}"
    try:
        code, _, document = http("GET", base + "/api/budget", headers=client)
        assert (code, document["budgets"], document["settings"]["daily"]["source"]) == (200, [], "default")

        # Only operators change anything; bad bodies are 422 problems that change nothing.
        assert http("PUT", base + "/api/budget", {"daily_usd": 1.0}, client)[0] == 403
        assert http("POST", base + "/api/budget/reset-total", None, client)[0] == 403
        assert http("PUT", base + "/api/limits", {"chat": {"rpm": 2}}, client)[0] == 403
        for bad in ({"daily_usd": -1}, {"weekly_usd": 1}, {}, {"daily_usd": "lots"}):
            code, _, problem = http("PUT", base + "/api/budget", bad, admin)
            assert (code, problem["type"]) == (422, "urn:feynman-jobs:problem:invalid-request"), bad
        assert http("PUT", base + "/api/limits", {"chat": {"rpm": 0}}, admin)[0] == 422
        assert not redis.exists("feynman:control:budgets", "feynman:control:limits")

        code, _, document = http("PUT", base + "/api/budget", {"daily_usd": 1.0}, admin)
        assert code == 200
        [daily] = document["budgets"]
        assert (daily["budget"], daily["limit_usd"], daily["source"]) == ("daily", 1.0, "runtime")
        assert daily["changed_by"] == admin_name
        assert daily["resets_at"].endswith("T16:00:00Z")  # midnight in Shanghai (FEYNMAN_TIMEZONE)
        assert f"budgets changed by {admin_name}: daily=1.0" in web.log()
        # Both gunicorn workers apply it to the next enqueue: one job's estimate fits, a second does not.
        assert http("POST", base + "/api/jobs", analyze_body("a"), client)[0] == 202
        code, _, problem = http("POST", base + "/api/jobs", analyze_body("b"), client)
        assert (code, problem["budget"], problem["limit_usd"]) == (429, "daily", 1.0)
        # Another process (the CLI) sees the same budget.
        shown = CliRunner().invoke(main, ["--redis-url", redis_url, "budget"])
        assert [(w["budget"], w["limit_usd"]) for w in json.loads(shown.output)] == [("daily", 1.0)]

        # null clears it, whatever the environment says; the next enqueue passes.
        document = http("PUT", base + "/api/budget", {"daily_usd": None}, admin)[2]
        assert document["budgets"] == []
        assert document["settings"]["daily"] == {
            "limit_usd": None,
            "source": "runtime",
            "changed_at": document["settings"]["daily"]["changed_at"],
            "changed_by": admin_name,
        }
        assert http("POST", base + "/api/jobs", analyze_body("c"), client)[0] == 202

        # The total budget: spent elsewhere, refused; started afresh, accepted; the ledger keeps history.
        ledger.record_call(
            redis, model="m", tokens_in=1, tokens_out=1, usd_micros=5_000_000, job_id="x", job_type="t"
        )
        http("PUT", base + "/api/budget", {"total_usd": 3.0}, admin)
        code, _, problem = http("POST", base + "/api/jobs", analyze_body("d"), client)
        assert (code, problem["budget"], problem["spent_usd"]) == (429, "total", 5.0)
        code, _, document = http("POST", base + "/api/budget/reset-total", None, admin)
        assert code == 200
        assert (document["budgets"][0]["spent_usd"], document["total_reset_by"]) == (0.0, admin_name)
        assert redis.xlen("feynman:ledger") == 1
        assert http("POST", base + "/api/jobs", analyze_body("d"), client)[0] == 202

        # Rate limits: the environment's default, then run-time values this test process obeys at once.
        limits = http("GET", base + "/api/limits", headers=client)[2]["limits"]
        assert (limits["chat"]["rph"]["limit"], limits["chat"]["rph"]["source"]) == (100, "environment")
        assert (limits["chat"]["rpm"]["limit"], limits["chat"]["rpm"]["used"]) == (None, 0)
        code, _, document = http(
            "PUT", base + "/api/limits", {"chat": {"rpm": 2}, "embeddings": {"tpm": 900}}, admin
        )
        assert code == 200
        assert document["limits"]["chat"]["rpm"]["changed_by"] == admin_name
        limiter = ProviderLimiter(redis, load_settings(redis_url=redis_url, llm_rph=100), "chat")
        limiter.acquire(10)
        limiter.acquire(10)
        with pytest.raises(HoldJob, match=r"chat rate limit reached \(RPM 2, RPH 100\)") as held:
            limiter.acquire(10, max_wait_s=0.2)
        assert 55 < held.value.retry_after_s <= 63
        limits = http("GET", base + "/api/limits", headers=client)[2]["limits"]
        rpm = limits["chat"]["rpm"]
        assert (rpm["limit"], rpm["used"], rpm["source"]) == (2, 2, "runtime")
        frees_in = datetime.fromisoformat(rpm["frees_at"]) - datetime.now(UTC)
        assert 55 < frees_in.total_seconds() <= 64
        assert limits["chat"]["rph"]["used"] == 2  # the hour's window counted the same two calls
        assert (limits["embeddings"]["tpm"]["limit"], limits["embeddings"]["tpm"]["used"]) == (900, 0)

        # The CLI sets them too, logged as the local user.
        result = CliRunner().invoke(
            main, ["--redis-url", redis_url, "limits", "set", "chat.rpm=none", "embeddings.rph=7"]
        )
        assert result.exit_code == 0, result.output
        limits = http("GET", base + "/api/limits", headers=client)[2]["limits"]
        assert limits["chat"]["rpm"]["limit"] is None
        assert (limits["embeddings"]["rph"]["limit"], limits["embeddings"]["rph"]["changed_by"][:4]) == (
            7,
            "cli:",
        )
        limiter.acquire(10)  # no RPM any more; RPH 100 has room
        refused = CliRunner().invoke(main, ["--redis-url", redis_url, "limits", "set", "chat.rpm=-3"])
        assert refused.exit_code != 0
        cli = ["--redis-url", redis_url, "budget"]
        result = CliRunner(env={"FEYNMAN_PRICES": json.dumps(PRICED)}).invoke(
            main, [*cli, "set", "--hourly", "0.25", "--total", "none"]
        )
        assert (result.exit_code, json.loads(result.output)) == (
            0,
            {"total": None, "daily": None, "hourly": 0.25},
        )
        budget = http("GET", base + "/api/budget", headers=client)[2]
        assert [(b["budget"], b["limit_usd"]) for b in budget["budgets"]] == [("hourly", 0.25)]
        assert budget["settings"]["hourly"]["changed_by"].startswith("cli:")
        result = CliRunner().invoke(main, [*cli, "reset-total"])
        assert result.output.startswith("total budget reset at ")
        assert http("GET", base + "/api/budget", headers=client)[2]["total_reset_by"].startswith("cli:")
        assert CliRunner().invoke(main, [*cli, "set", "--daily", "-1"]).exit_code != 0
    finally:
        web.stop()
