"""rq-dashboard mounted at /rq/ in the web process, reading our JSON jobs."""

from __future__ import annotations

from redis import Redis

from feynman_jobs.queueing.wiring import get_queue
from tests.support import Process, enqueue, http, wait_until

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


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


def test_job_detail_of_a_job_with_a_dependency(api: str, redis: Redis) -> None:
    parent = enqueue(api, ROLLUP)
    child = enqueue(api, {**ROLLUP, "depends_on": [parent["id"]]})
    code, _, detail = http("GET", f"{api}/rq/0/data/job/{child['id']}.json")
    assert code == 200, detail
    assert detail["id"] == child["id"]
    assert detail["status"] == "deferred"
    assert detail["depends_on"] == [parent["id"]]
    assert detail["depends_on_status"] == ["active"]
    code, _, page = http("GET", f"{api}/rq/0/view/job/{child['id']}")
    assert code == 200
    assert child["id"] in page


def test_workers_while_a_worker_runs_a_job(api: str, redis: Redis, worker: Process) -> None:
    job = get_queue("default", redis).enqueue("tests.jobs.block_until_released", "test:release")
    wait_until(lambda: job.get_status(refresh=True) == "started", 30, "the job to start")
    try:
        code, _, listing = http("GET", api + "/rq/0/data/workers.json")
        assert code == 200, listing
        [entry] = listing["workers"]
        assert entry["state"] == "busy"
        assert entry["queues"] == ["high", "default", "low"]
        assert entry["current_job"]["job_id"] == job.id
        assert entry["current_job"]["description"] == "tests.jobs.block_until_released('test:release')"
    finally:
        redis.rpush("test:release", "go")
    wait_until(lambda: job.get_status(refresh=True) == "finished", 30, "the job to finish")
    code, _, listing = http("GET", api + "/rq/0/data/workers.json")
    assert code == 200
    assert [entry["current_job"] for entry in listing["workers"]] == ["idle"]


def test_an_unknown_job_is_404_not_500(api: str, redis: Redis) -> None:
    for path in ("/rq/0/data/job/no-such-job.json", "/rq/0/view/job/no-such-job"):
        code, _, _body = http("GET", api + path)
        assert code == 404, path
