"""Cost control with real processes: budgets at enqueue and at run time, rate limits across workers,
rollups that agree with the ledger."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from redis import Redis
from werkzeug import Request, Response

from feynman_jobs.costs import ledger, rollups
from feynman_jobs.costs.ratelimit import ProviderLimiter
from feynman_jobs.errors import HoldJob
from feynman_jobs.settings import load_settings
from tests.chat_server import ANALYSIS_ZH, json_completion
from tests.support import Process, analyze_body, http, start_web, start_worker, wait_for

#: The offline analyzer priced high enough that one analysis of the sample costs about $0.7.
PRICED = {"local-heuristic-analyzer": {"input_per_mtok": 1000, "output_per_mtok": 1000}}


analysis = analyze_body


@pytest.fixture
def budgeted(redis_url: str, redis: Redis, tmp_path: Path) -> Iterator[tuple[str, Process]]:
    """Web and worker with a $2 daily budget and the offline analyzer priced."""
    env = {"FEYNMAN_PRICES": json.dumps(PRICED), "FEYNMAN_BUDGET_DAILY_USD": "2.0"}
    web, base = start_web(redis_url, tmp_path / "web.log", env)
    worker = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    yield base, worker
    worker.stop()
    web.stop()


def test_budgets_refuse_at_enqueue_and_hold_at_run_time(budgeted: tuple[str, Process], redis: Redis) -> None:
    base, _worker = budgeted
    code, _, estimate = http("POST", base + "/api/estimate", analysis("e"))
    assert code == 200
    [job_estimate] = estimate["jobs"]
    assert job_estimate["model"] == "local-heuristic-analyzer"
    cost = estimate["usd"]
    assert 0.5 < cost < 1.0
    assert estimate["budgets"][0]["fits"] is True

    http("POST", base + "/api/queues/pause")
    first = http("POST", base + "/api/jobs", analysis("b1"))[2]
    second = http("POST", base + "/api/jobs", analysis("b2"))[2]
    code, headers, problem = http("POST", base + "/api/jobs", analysis("b3"))
    assert code == 429
    assert problem["type"] == "urn:feynman-jobs:problem:budget-exceeded"
    assert (problem["budget"], problem["limit_usd"], problem["spent_usd"]) == ("daily", 2.0, 0.0)
    assert problem["reserved_usd"] == pytest.approx(2 * cost)
    assert problem["remaining_usd"] == pytest.approx(2.0 - 2 * cost)
    assert problem["needed_usd"] == pytest.approx(cost)
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp() + 86400
    assert abs(int(headers["Retry-After"]) - (midnight - time.time())) < 5
    assert len(redis.keys("rq:job:*")) == 2  # the refused job left nothing behind

    # Another service spends $1 of the same budget before the queued jobs run.
    ledger.record_call(
        redis,
        model="other",
        tokens_in=1,
        tokens_out=1,
        usd_micros=1_000_000,
        job_id="x",
        job_type="elsewhere",
    )
    http("POST", base + "/api/queues/resume")
    done = wait_for(base, first["id"])
    held = wait_for(base, second["id"], ("scheduled",))
    assert held["held"]["reason"].startswith("the daily budget")
    assert held["error"] is None
    assert held["attempts"] <= 1
    budget_doc = http("GET", base + "/api/budget")[2]
    [daily] = budget_doc["budgets"]
    spent = daily["spent_usd"]
    assert spent == pytest.approx(1.0 + done["cost"]["usd"])
    overshoot = max(0.0, spent - 2.0)
    assert overshoot <= done["cost"]["usd"]
    assert daily["resets_at"].endswith("T00:00:00Z")

    # The day rolls over (its spend counter starts from zero) and the held job's time comes: it runs.
    redis.delete(ledger.spend_keys(datetime.now(UTC))["daily"])
    registry_key = f"rq:scheduled:{held['queue']}"
    redis.zadd(registry_key, {second["id"]: time.time()})
    finished = wait_for(base, second["id"], timeout=30)
    assert finished["held"] is None
    assert finished["cost"]["usd"] > 0


def test_rpm_holds_across_three_workers_and_every_job_finishes(
    api: str, redis_url: str, redis: Redis, tmp_path: Path, httpserver: HTTPServer
) -> None:
    seen: list[float] = []
    lock = threading.Lock()

    def answer(request: Request) -> Response:
        with lock:
            seen.append(time.monotonic())
        return Response(json.dumps(json_completion(ANALYSIS_ZH)), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    rpm = 8
    env = {"FEYNMAN_LLM_BASE_URL": httpserver.url_for("/v1"), "FEYNMAN_LLM_RPM": str(rpm)}
    workers = [start_worker(redis_url, tmp_path / f"worker-{i}.log", redis, env) for i in range(3)]
    try:
        jobs = [http("POST", api + "/api/jobs", analysis(f"r{i}"))[2] for i in range(12)]
        results = [wait_for(api, job["id"], timeout=180) for job in jobs]
    finally:
        for worker in workers:
            worker.stop()
    assert all(result["status"] == "finished" for result in results)
    assert len(seen) == 12
    busiest = max(sum(1 for t in seen if start <= t < start + 60) for start in seen)
    assert busiest <= rpm
    assert any(result["attempts"] == 1 for result in results)


def test_rollups_equal_the_ledger_and_concurrent_runs_change_nothing(redis: Redis) -> None:
    now = datetime.now(UTC)
    for n in range(40):
        ledger.record_call(
            redis,
            model=f"m{n % 3}",
            tokens_in=100 + n,
            tokens_out=10,
            usd_micros=1000 + n,
            job_id=f"j{n}",
            job_type="t" if n % 2 else "u",
        )
    threads = [threading.Thread(target=rollups.rollup_window, args=(redis, "hour", now)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [stored] = rollups.stored(
        redis, "hour", rollups.window_start("hour", now), now + rollups.WINDOW_LENGTH["hour"]
    )
    assert stored["calls"] == 40
    assert stored["tokens_in"] == sum(100 + n for n in range(40))
    assert stored["usd"] == sum(1000 + n for n in range(40)) / 1e6
    assert stored == rollups.rollup_window(redis, "hour", now)
    totals = ledger.totals(redis)
    assert sum(row["calls"] for row in totals) == 40
    assert {(row["model"], row["job_type"]) for row in totals} == {
        (r["model"], r["job_type"]) for r in stored["by_model_and_type"]
    }


def test_costs_api_shows_the_current_window(api: str, worker: Process, redis: Redis) -> None:
    wait_for(api, http("POST", api + "/api/jobs", analysis("c"))[2]["id"])
    code, _, costs = http("GET", api + "/api/costs?granularity=hour")
    assert code == 200
    assert costs["windows"][-1]["calls"] == 1
    assert costs["windows"][-1]["by_model_and_type"][0]["job_type"] == "analyze_conversation"
    assert http("GET", api + "/api/costs?granularity=week")[0] == 422
    code, _, budget = http("GET", api + "/api/budget")
    assert (code, budget["budgets"], budget["limits_configured"]) == (200, [], False)


def test_tpm_is_token_weighted_and_shared(redis_url: str, redis: Redis) -> None:
    settings = load_settings(redis_url=redis_url, llm_tpm=1000)
    granted: list[int] = []
    held: list[float] = []

    def caller() -> None:
        client = Redis.from_url(redis_url)
        limiter = ProviderLimiter(client, settings)
        for _ in range(3):
            try:
                limiter.acquire(300, max_wait_s=0.3)
                granted.append(300)
            except HoldJob as hold:
                held.append(hold.retry_after_s)
        client.close()

    threads = [threading.Thread(target=caller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(granted) == 900  # three calls of 300 fit in 1000 tokens a minute; the fourth would not
    assert len(held) == 9
    assert all(30 < wait <= 63 for wait in held)
