"""No cross-site steering, on the Procfile's gunicorn: ambient credentials refuse what another site sends.

Ambient credentials are the ones a browser supplies by itself: the dashboard's basic auth and
anonymous access on loopback. (Bearer tokens are not ambient: test_credentials.py. A real browser on
a real other site: test_dashboard_browser.py.)
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from redis import Redis
from rq.job import JobStatus
from rq.registry import FailedJobRegistry

from feynman_jobs.queueing.wiring import get_queue
from tests.support import enqueue, http, start_web

BASIC = {"Authorization": "Basic " + base64.b64encode(b"ops:dashboard-password-2").decode()}
CROSS_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another origin all the same
    {"Origin": "https://evil.example"},
    {"Origin": "null"},  # a sandboxed frame or a file: page
]
ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


@pytest.fixture(scope="module")
def web(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Anonymous mode for the API, basic auth for the dashboard."""
    env = {"FEYNMAN_DASHBOARD_USER": "ops", "FEYNMAN_DASHBOARD_PASSWORD": "dashboard-password-2"}
    process, base = start_web(redis_url, tmp_path_factory.mktemp("cross-site") / "web.log", env)
    yield base
    process.stop()


def failed_job(redis: Redis) -> str:
    """A job in the default queue's failed registry, as a worker leaves one."""
    queue = get_queue("default", redis)
    job = queue.enqueue("tests.jobs.sleep_for", 0)
    queue.remove(job)
    job.set_status(JobStatus.FAILED)
    FailedJobRegistry("default", connection=redis).add(job, ttl=600, exc_string="RuntimeError: x")
    return job.id


@pytest.mark.parametrize("marks", CROSS_SITE)
def test_anonymous_loopback_refuses_what_another_site_sends(
    web: str, redis: Redis, marks: dict[str, str]
) -> None:
    job = enqueue(web, ROLLUP)
    for method, path in (
        ("POST", "/api/queues/pause"),
        ("POST", f"/api/jobs/{job['id']}/cancel"),
        ("POST", "/api/jobs"),
        ("DELETE", "/api/learners/l-1/memories"),
    ):
        code, _, problem = http(method, web + path, ROLLUP if path == "/api/jobs" else None, marks)
        assert code == 403, (path, problem)
        assert problem["type"] == "urn:feynman-jobs:problem:cross-site-request"
    assert not redis.exists("rq:suspended")
    assert http("GET", f"{web}/api/jobs/{job['id']}")[2]["status"] == "queued"
    assert redis.llen("rq:queue:low") == 1
    # Reading is not steering: a cross-site GET is answered (the browser keeps the answer from the page).
    assert http("GET", web + "/api/queues", headers=marks)[0] == 200


def test_the_same_origin_may_change_state(web: str, redis: Redis) -> None:
    port = web.rsplit(":", 1)[1]
    for marks in ({"Sec-Fetch-Site": "same-origin"}, {"Origin": f"http://127.0.0.1:{port}"}, {}):
        assert http("POST", web + "/api/queues/pause", headers=marks)[0] == 200
        assert http("POST", web + "/api/queues/resume", headers=marks)[0] == 200


def test_an_empty_text_plain_body_is_refused_like_any_other_non_json_body(web: str, redis: Redis) -> None:
    job = enqueue(web, ROLLUP)
    for path in ("/api/queues/pause", "/api/queues/resume", f"/api/jobs/{job['id']}/cancel"):
        code, _, problem = http("POST", web + path, b"", {"Content-Type": "text/plain"})
        assert (code, problem["type"]) == (415, "urn:feynman-jobs:problem:unsupported-media-type"), path
        code, _, _ = http("POST", web + path, b"a=b", {"Content-Type": "application/x-www-form-urlencoded"})
        assert code == 415
    assert not redis.exists("rq:suspended")
    assert http("GET", f"{web}/api/jobs/{job['id']}")[2]["status"] == "queued"


@pytest.mark.parametrize("marks", CROSS_SITE)
def test_basic_auth_refuses_what_another_site_sends(web: str, redis: Redis, marks: dict[str, str]) -> None:
    waiting = enqueue(web, ROLLUP)
    failed = failed_job(redis)
    for path in (
        "/rq/queue/low/queued/empty",
        "/rq/requeue/default",
        f"/rq/job/{failed}/requeue",
        f"/rq/job/{failed}/delete",
        "/rq/queue/low/compact",
    ):
        code, _, problem = http("POST", web + path, None, {**BASIC, **marks})
        assert code == 403, (path, problem)
        assert problem["type"] == "urn:feynman-jobs:problem:cross-site-request"
    assert redis.lrange("rq:queue:low", 0, -1) == [waiting["id"].encode()]
    assert FailedJobRegistry("default", connection=redis).get_job_ids() == [failed]


def test_no_dashboard_action_answers_get(web: str, redis: Redis) -> None:
    failed = failed_job(redis)
    for path in ("/rq/requeue/default", f"/rq/job/{failed}/requeue", "/rq/queue/default/failed/empty"):
        code, headers, _ = http("GET", web + path, headers=BASIC)
        assert code == 405, path
        assert headers["Allow"] == "POST" if path == "/rq/requeue/default" else "POST" in headers["Allow"]
    assert FailedJobRegistry("default", connection=redis).get_job_ids() == [failed]
    code, _, done = http(
        "POST", web + "/rq/requeue/default", None, {**BASIC, "Sec-Fetch-Site": "same-origin"}
    )
    assert (code, done["count"]) == (200, 1)
    assert FailedJobRegistry("default", connection=redis).get_job_ids() == []
    assert redis.lrange("rq:queue:default", 0, -1) == [failed.encode()]
