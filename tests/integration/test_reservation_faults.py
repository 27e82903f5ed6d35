"""Budget reservations cannot leak: under a budget that leaves room for only the jobs at hand, a
stopped job, a killed work horse, a deleted job and a job whose dependency failed all give their
money back within two minutes, so new work fits again."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from feynman_jobs.costs.estimate import estimate_plan
from feynman_jobs.queueing.planning import plan_job
from feynman_jobs.queueing.requests import parse_enqueue_request
from feynman_jobs.queueing.wiring import fetch_job
from feynman_jobs.settings import load_settings
from tests.chat_server import FakeProvider, refuse
from tests.support import (
    Process,
    analyze_body,
    enqueue,
    http,
    start_web,
    start_worker,
    wait_for,
    wait_until,
    work_horses,
)

PRICES = {"test-model": {"input_per_mtok": 1000, "output_per_mtok": 1000}}
#: The bound docs/reliability.md promises for a reservation nobody gave back.
BOUND_S = 120


def _analysis(marker: str, **extra: Any) -> dict[str, Any]:
    body = analyze_body(marker)
    body["payload"]["topic"] = f"光合作用 {marker}"
    return {**body, **extra}


def _budget(api: str) -> tuple[float, float]:
    document = http("GET", api + "/api/budget")[2]
    return float(document["budgets"][0]["reserved_usd"]), float(document["inflight_usd"])


def test_stopped_killed_deleted_and_stuck_jobs_give_their_reservations_back(
    redis_url: str, redis: Redis, tmp_path: Path, provider: FakeProvider
) -> None:
    env = {"FEYNMAN_LLM_BASE_URL": provider.url, "FEYNMAN_LLM_MODEL": "test-model"}
    settings = load_settings(
        redis_url=redis_url, llm_base_url=provider.url, llm_model="test-model", prices=PRICES
    )
    [plan] = plan_job(parse_enqueue_request(_analysis("estimate")), settings)
    each = estimate_plan(plan, settings).usd_micros / 1e6
    # Room for four reservations and not a fifth.
    env |= {"FEYNMAN_PRICES": json.dumps(PRICES), "FEYNMAN_BUDGET_DAILY_USD": f"{4.5 * each:.6f}"}
    web, api = start_web(redis_url, tmp_path / "web.log", env)
    # Forked horses: the test SIGKILLs a work horse (a stop on slots: tests/integration/test_slots.py).
    forking = {**env, "FEYNMAN_WORKER_CONCURRENCY": "1"}
    workers = [start_worker(redis_url, tmp_path / f"worker-{n}.log", redis, forking) for n in range(2)]
    scheduler = Process("scheduler", {"REDIS_URL": redis_url, **env}, tmp_path / "scheduler.log")
    try:
        provider.script("stop-me", provider.held(refuse(503)))
        provider.script("kill-me", provider.held(refuse(503)))
        stopped = enqueue(api, _analysis("stop-me"))
        killed = enqueue(api, _analysis("kill-me", max_retries=0))
        wait_until(
            lambda: provider.received["stop-me"] == provider.received["kill-me"] == 1, 60, "both calls"
        )
        deleted = enqueue(api, _analysis("delete-me", delay_s=3600))
        failing = enqueue(
            api,
            {
                "type": "vectorize_documents",
                "payload": {"memory_id": "gone", "learner_id": "l-1"},
                "max_retries": 0,
            },
        )
        stuck = enqueue(api, _analysis("stuck", depends_on=[failing["id"]]))
        reserved, in_flight = _budget(api)
        assert reserved == pytest.approx(4 * each, rel=0.01)  # the markers differ by a token or two
        assert in_flight > 0
        assert http("POST", api + "/api/jobs", _analysis("one-too-many"))[0] == 429

        # A stop, a SIGKILLed work horse, a delete from the dashboard, a dependency that fails.
        code, _, document = http("POST", f"{api}/api/jobs/{stopped['id']}/cancel")
        assert (code, document["action"]) == (202, "stopping")
        name = http("GET", f"{api}/api/jobs/{killed['id']}")[2]["worker_name"]
        [horse] = work_horses(int(redis.hget(f"rq:worker:{name}", "pid") or 0))
        os.kill(horse, signal.SIGKILL)
        fetch_job(deleted["id"], redis).delete()
        provider.release.set()
        faults_at = time.monotonic()
        assert wait_for(api, stopped["id"], ("stopped",))["status"] == "stopped"
        assert wait_for(api, killed["id"], ("failed",))["status"] == "failed"
        assert wait_for(api, stuck["id"], ("canceled",), timeout=60)["error"]["type"] == "DependencyFailed"

        wait_until(lambda: _budget(api) == (0.0, 0.0), BOUND_S, "every reservation to come back")
        print(f"reservations back {time.monotonic() - faults_at:.1f} s after the faults")
        jobs = [_analysis(f"again-{n}", delay_s=3600) for n in range(4)]
        code, _, batch = http("POST", api + "/api/batches", {"jobs": jobs})
        assert code == 202, batch  # the whole budget is there again
        assert provider.answered == {}  # nothing was ever paid for
    finally:
        scheduler.stop()
        for worker in workers:
            worker.stop()
        web.stop()
