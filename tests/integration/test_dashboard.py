"""rq-dashboard mounted at /rq/ in the web process, reading our JSON jobs."""

from __future__ import annotations

from redis import Redis

from feynman_jobs.queues import get_queue
from tests.support import http


def test_dashboard_lists_our_queues_and_jobs_to_a_loopback_client(api: str, redis: Redis) -> None:
    job = get_queue("low", redis).enqueue("tests.jobs.sleep_for", 0)
    code, _, page = http("GET", api + "/rq/")
    assert code == 200
    assert "RQ Dashboard" in page or "rq-dashboard" in page.lower()
    code, _, queues = http("GET", api + "/rq/0/data/queues.json")
    assert code == 200
    assert {"name": "low", "count": 1} in [{"name": q["name"], "count": q["count"]} for q in queues["queues"]]
    code, _, listing = http("GET", api + "/rq/0/data/jobs/low/queued/10/asc/1.json")
    assert code == 200
    assert [entry["id"] for entry in listing["jobs"]] == [job.id]
