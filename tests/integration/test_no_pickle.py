"""No route of the web process unpickles: a failed job whose data, meta, result and error are pickles.

Anyone who can write to Redis could plant such a job; loading it would run their code in the web
process. Two checks: in-process, with every unpickler made to raise and record the call, every
dashboard and API route is called; on the Procfile's gunicorn, a pickle that would create a file
when loaded is planted, and the routes are called again.
"""

from __future__ import annotations

import base64
import json
import pickle  # only to plant what the service must never load
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis
from rq.registry import FailedJobRegistry
from werkzeug.routing import Rule

from feynman_jobs import keys
from feynman_jobs.queueing.wiring import get_queue
from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app
from tests.support import http, start_web

BATCH = "batch-with-a-pickle"
#: Path parameters of every route, filled with the planted job, its queue and registry.
PARAMETERS = {
    "job_id": None,  # the planted job's id
    "batch_id": BATCH,
    "queue_name": "default",
    "registry_name": "failed",
    "instance_number": "0",
    "per_page": "8",
    "order": "asc",
    "page": "1",
    "learner_id": "l-1",
    "filename": "dashboard.js",
    "name": "no-such-worker",
}


class Planted:
    """Creates `marker` when unpickled: what an attacker's payload would do (os.system and worse)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def plant(redis: Redis, marker: Path) -> str:
    """A failed job in the default queue whose data, meta, result and error are pickles."""
    job = get_queue("default", redis).enqueue("tests.jobs.fail_always", "planted")
    binary = pickle.dumps(Planted(marker), protocol=pickle.HIGHEST_PROTOCOL)
    text = pickle.dumps(Planted(marker), protocol=0)  # ASCII: it fits a text field such as exc_info
    redis.hset(
        keys.rq_job(job.id),
        mapping={"data": binary, "meta": binary, "result": binary, "exc_info": text, "status": "failed"},
    )
    redis.xadd(
        f"rq:results:{job.id}",
        {
            "type": 2,
            "return_value": base64.b64encode(binary),
            "exc_string": base64.b64encode(zlib.compress(text)),
            "worker_name": "",
        },
    )
    redis.lrem(keys.rq_queue("default"), 0, job.id)
    redis.zadd(FailedJobRegistry("default", connection=redis).key, {job.id: 2**31})
    redis.zadd(keys.JOBS_INDEX, {job.id: 1})
    redis.rpush(keys.batch(BATCH), job.id)
    return job.id


def every_route(app: Flask) -> Iterator[tuple[str, Callable[[str], str]]]:
    """(method, path for a job id) of every rule of the app, its other parameters filled in."""
    for rule in app.url_map.iter_rules():

        def path(job_id: str, rule: Rule = rule) -> str:
            values = {name: PARAMETERS[name] or job_id for name in rule.arguments}
            built = rule.build(values, append_unknown=False)
            assert built is not None
            return built[1]

        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, path


@pytest.fixture
def unpickled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every unpickler of this process raises, and records that it was called."""
    calls: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        calls.append("unpickle")
        raise AssertionError("something unpickled data from Redis")

    import rq.serializers

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(rq.serializers.DefaultSerializer, "loads", refuse)
    return calls


def test_no_route_unpickles_in_process(
    redis_url: str, redis: Redis, tmp_path: Path, unpickled: list[str]
) -> None:
    marker = tmp_path / "unpickled"
    app = create_app(load_settings(redis_url=redis_url))
    client = app.test_client()
    routes = list(every_route(app))
    assert len(routes) >= 35
    for method, path_for in routes:
        path = path_for(plant(redis, marker))
        response = client.open(path, method=method, json={})
        response.close()  # a static file is streamed from disk
        assert response.status_code < 500, (method, path, response.get_data(as_text=True)[:300])
        assert unpickled == [], (method, path)
        assert not marker.exists(), (method, path)
        redis.flushall()


def test_the_routes_answer_plainly_for_a_job_they_will_not_load(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    client = create_app(load_settings(redis_url=redis_url)).test_client()
    job_id = plant(redis, tmp_path / "unpickled")
    response = client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 409
    assert response.get_json()["type"] == "urn:feynman-jobs:problem:job-unreadable"
    assert client.get("/api/jobs").get_json()["jobs"] == []
    assert client.get(f"/rq/0/data/job/{job_id}.json").status_code == 409
    listed = client.get("/rq/0/data/jobs/default/failed/8/asc/1.json").get_json()
    assert [job["id"] for job in listed["jobs"]] == [job_id]
    requeued = client.post("/rq/requeue/default").get_json()
    assert (requeued["count"], requeued["skipped"]) == (0, 1)
    assert client.post(f"/rq/job/{job_id}/delete").get_json() == {"status": "OK"}
    assert not redis.exists(keys.rq_job(job_id))
    assert not (tmp_path / "unpickled").exists()


def test_no_route_unpickles_in_gunicorn(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    web, base = start_web(redis_url, tmp_path / "web.log")
    try:
        routes = list(every_route(create_app(load_settings(redis_url=redis_url))))
        statuses = []
        for method, path_for in routes:
            path = path_for(plant(redis, marker))
            code, _, _ = http(method, base + path, {} if method != "GET" else None)
            statuses.append(code)
            assert code < 500, (method, path)
            assert not marker.exists(), (method, path)
            redis.flushall()
        assert statuses.count(409) >= 4  # the job's own routes refuse it plainly
    finally:
        web.stop()
    assert "Traceback" not in web.log()


def test_a_json_job_is_still_shown_in_full(redis_url: str, redis: Redis) -> None:
    client = create_app(load_settings(redis_url=redis_url)).test_client()
    job = get_queue("low", redis).enqueue("tests.jobs.sleep_for", 0, meta={"note": "hello"})
    detail = client.get(f"/rq/0/data/job/{job.id}.json").get_json()
    assert (detail["id"], detail["status"], detail["origin"]) == (job.id, "queued", "low")
    assert json.loads(detail["metadata"]) == {"note": "hello"}
    assert detail["description"] == "tests.jobs.sleep_for(0)"
