"""Client and operator tokens on the Procfile's gunicorn: who can do what, whose jobs a client may steer.

Short tokens stop every process at start, naming the variable.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from feynman_jobs.queueing.wiring import get_queue
from tests.support import VENV_BIN, Process, analyze_body, free_port, http, start_web, wait_until

CLIENT = "client-token-5f1c2a9e7b"
OTHER_CLIENT = "client-token-second-8d4e"
ADMIN = "admin-token-0c9b3e6f1a"
USER, PASSWORD = "ops", "dashboard-password-1"
ENV = {
    "FEYNMAN_API_TOKENS": f"{CLIENT},{OTHER_CLIENT}",
    "FEYNMAN_ADMIN_TOKENS": ADMIN,
    "FEYNMAN_DASHBOARD_USER": USER,
    "FEYNMAN_DASHBOARD_PASSWORD": PASSWORD,
}
ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def web(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Process]]:
    """The Procfile's web process with client tokens, an operator token and dashboard credentials."""
    process, base = start_web(redis_url, tmp_path_factory.mktemp("tokens") / "web.log", ENV)
    yield base, process
    process.stop()


def call(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    code, _, document = http(method, base + path, body, auth(token) if token else None)
    return code, document


def test_no_credential_is_401_even_on_loopback(web: tuple[str, Process], redis: Redis) -> None:
    base, _ = web
    for method, path in (("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/metrics"), ("GET", "/rq/")):
        code, document = call(base, method, path)
        assert code == 401, path
        assert document["type"] == "urn:feynman-jobs:problem:unauthorized"
    assert call(base, "GET", "/api/jobs", "not-a-token-0123456789")[0] == 401
    assert http("GET", base + "/api/queues", headers=basic())[0] == 401  # basic auth opens the dashboard only
    assert call(base, "GET", "/healthz")[0] == 200
    assert redis.keys("rq:job:*") == []


def test_a_client_enqueues_reads_searches_and_steers_its_own_jobs(
    web: tuple[str, Process], redis: Redis
) -> None:
    base, _ = web
    code, job = call(base, "POST", "/api/jobs", CLIENT, analyze_body("s-client"))
    assert code == 202, job
    assert call(base, "GET", f"/api/jobs/{job['id']}", CLIENT)[1]["status"] == "queued"
    assert [item["id"] for item in call(base, "GET", "/api/jobs", CLIENT)[1]["jobs"]] == [job["id"]]
    assert call(base, "GET", "/api/memories/search?q=x&learner_id=l-1", CLIENT)[0] == 200
    assert call(base, "POST", "/api/estimate", CLIENT, analyze_body("s-estimate"))[0] == 200
    assert call(base, "GET", "/api/queues", CLIENT)[0] == 200
    assert call(base, "GET", "/metrics", CLIENT)[0] == 200
    # Another client may read the job but not steer it; an operator may.
    code, refused = call(base, "POST", f"/api/jobs/{job['id']}/cancel", OTHER_CLIENT)
    assert (code, refused["type"]) == (403, "urn:feynman-jobs:problem:forbidden")
    assert call(base, "GET", f"/api/jobs/{job['id']}", OTHER_CLIENT)[1]["status"] == "queued"
    code, canceled = call(base, "POST", f"/api/jobs/{job['id']}/cancel", CLIENT)
    assert (code, canceled["status"]) == (200, "canceled")
    assert call(base, "POST", f"/api/jobs/{job['id']}/requeue", OTHER_CLIENT)[0] == 403
    code, requeued = call(base, "POST", f"/api/jobs/{job['id']}/requeue", CLIENT)
    assert (code, requeued["status"]) == (202, "queued")
    assert call(base, "POST", f"/api/jobs/{job['id']}/cancel", ADMIN)[1]["status"] == "canceled"
    # The job keeps a fingerprint of the token that made it, never the token.
    stored: dict[bytes, bytes] = redis.hgetall(f"rq:job:{job['id']}")  # type: ignore[assignment]
    assert redis.hget(f"rq:job:{job['id']}", "meta")
    assert not any(CLIENT.encode() in value for value in stored.values())


def test_a_client_cancels_only_its_own_batches(web: tuple[str, Process], redis: Redis) -> None:
    base, _ = web
    code, batch = call(
        base, "POST", "/api/batches", CLIENT, {"jobs": [analyze_body("s-b1"), analyze_body("s-b2")]}
    )
    assert code == 202, batch
    code, refused = call(base, "POST", f"/api/batches/{batch['id']}/cancel", OTHER_CLIENT)
    assert (code, refused["type"]) == (403, "urn:feynman-jobs:problem:forbidden")
    assert call(base, "GET", f"/api/batches/{batch['id']}", OTHER_CLIENT)[1]["counts"] == {"queued": 2}
    code, canceled = call(base, "POST", f"/api/batches/{batch['id']}/cancel", CLIENT)
    assert (code, canceled["canceled"]) == (200, 2)


def test_operator_work_needs_an_operator_token(web: tuple[str, Process], redis: Redis) -> None:
    base, _ = web
    for method, path, body in (
        ("POST", "/api/queues/pause", None),
        ("POST", "/api/queues/resume", None),
        ("POST", "/api/jobs", ROLLUP),
        ("GET", "/rq/", None),
        ("GET", "/rq/0/data/queues.json", None),
    ):
        code, document = call(base, method, path, CLIENT, body)
        assert code == 403, (path, document)
    assert not redis.exists("rq:suspended")
    assert redis.keys("rq:job:*") == []
    assert call(base, "POST", "/api/queues/pause", ADMIN)[0] == 200
    assert redis.exists("rq:suspended")
    assert call(base, "POST", "/api/queues/resume", ADMIN)[0] == 200
    code, rollup = call(base, "POST", "/api/jobs", ADMIN, ROLLUP)
    assert (code, rollup["type"]) == (202, "rollup_costs")
    assert http("GET", base + "/rq/", headers=auth(ADMIN))[0] == 200
    assert http("GET", base + "/rq/", headers=basic())[0] == 200


def test_an_operator_requeues_any_failed_job(web: tuple[str, Process], redis: Redis, worker: Process) -> None:
    base, _ = web
    job = get_queue("default", redis).enqueue("tests.jobs.fail_always", "boom")
    wait_until(lambda: job.get_status(refresh=True) == "failed", 30, "the job to fail")
    assert call(base, "POST", f"/api/jobs/{job.id}/requeue", CLIENT)[0] == 403
    assert call(base, "POST", f"/api/jobs/{job.id}/requeue", ADMIN)[0] == 202


def test_bearer_tokens_work_from_any_origin(web: tuple[str, Process], redis: Redis) -> None:
    base, _ = web
    cross_site = {"Origin": "https://tutor.example.com", "Sec-Fetch-Site": "cross-site", **auth(ADMIN)}
    assert http("POST", base + "/api/queues/pause", headers=cross_site)[0] == 200
    assert http("POST", base + "/api/queues/resume", headers=cross_site)[0] == 200


def test_tokens_never_reach_the_log(web: tuple[str, Process], redis: Redis) -> None:
    base, process = web
    call(base, "GET", "/api/jobs", CLIENT)
    call(base, "GET", "/api/jobs", "wrong-token-0123456789abc")
    log = process.log()
    assert 'GET /api/jobs HTTP/1.1" 200' in log
    for secret in (CLIENT, OTHER_CLIENT, ADMIN, PASSWORD, "wrong-token-0123456789abc"):
        assert secret not in log


@pytest.mark.parametrize("variable", ["FEYNMAN_API_TOKENS", "FEYNMAN_ADMIN_TOKENS"])
def test_a_short_token_stops_every_process_at_start(redis_url: str, tmp_path: Path, variable: str) -> None:
    env = {"REDIS_URL": redis_url, variable: "long-enough-token-01,short-token"}
    web = Process("web", {**env, "PORT": str(free_port())}, tmp_path / "web.log")
    worker = Process("worker", env, tmp_path / "worker.log")
    try:
        assert web.proc.wait(60) != 0
        assert worker.proc.wait(60) != 0
    finally:
        web.stop()
        worker.stop()
    cli = subprocess.run(
        [str(VENV_BIN / "feynman-jobs"), "queues"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode != 0
    for output in (web.log(), worker.log(), cli.stderr):
        assert f"{variable}: Value error, every token must be at least 16 characters long" in output
        assert "short-token" not in output
