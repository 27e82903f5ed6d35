"""init_app on a host Flask app that has its own routes, config and error handlers (in-process)."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from feynman_jobs.settings import load_settings
from feynman_jobs.web import init_app
from tests.support import analyze_body

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


class TutorError(Exception):
    """An error of the host app, answered by the host's own handler."""


def host_app(redis_url: str) -> Flask:
    app = Flask("tutor")
    app.config.update(SECRET_KEY="host-secret", TUTOR_GREETING="hello")

    @app.get("/hello")
    def hello() -> str:
        return str(app.config["TUTOR_GREETING"])

    @app.get("/boom")
    def boom() -> str:
        raise TutorError("host failure")

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return "the tutor has no such page", 404

    @app.errorhandler(TutorError)
    def tutor_error(error: TutorError) -> tuple[str, int]:
        return f"tutor says: {error}", 418

    init_app(app, load_settings(redis_url=redis_url))
    return app


def test_init_app_adds_the_api_and_leaves_the_host_app_its_own(redis_url: str, redis: Redis) -> None:
    app = host_app(redis_url)
    client = app.test_client()
    # The host's routes, config and error handlers are untouched, and its routes keep its own access
    # rules (a remote caller reaches /hello; the API's gate covers only the API's routes).
    assert client.get("/hello", environ_base=REMOTE).text == "hello"
    assert app.config["SECRET_KEY"] == "host-secret"
    assert (client.get("/nope").status_code, client.get("/nope").text) == (404, "the tutor has no such page")
    assert (client.get("/boom").status_code, client.get("/boom").text) == (418, "tutor says: host failure")
    refused = client.get("/api/queues", environ_base=REMOTE)
    assert (refused.status_code, refused.mimetype) == (401, "application/problem+json")

    # The API itself works inside the host: enqueue, read, a problem for an unknown job.
    created = client.post("/api/jobs", json=analyze_body("host-app"))
    assert created.status_code == 202, created.get_json()
    job_id = created.get_json()["id"]
    assert created.headers["Location"] == f"/api/jobs/{job_id}"
    assert client.get(f"/api/jobs/{job_id}").get_json()["status"] == "queued"
    assert client.get(f"/api/jobs/{job_id}/events").get_json()["events"][0]["event"] == "enqueued"
    missing = client.get("/api/jobs/no-such-job")
    assert (missing.status_code, missing.mimetype) == (404, "application/problem+json")
    assert missing.get_json()["type"] == "urn:feynman-jobs:problem:job-not-found"
    invalid = client.post("/api/jobs", json={"type": "analyze_conversation"})
    assert (invalid.status_code, invalid.mimetype) == (422, "application/problem+json")
    assert redis.llen("rq:queue:high") == 1
    assert client.get("/api/openapi.json").get_json()["paths"]["/api/jobs"]["post"]
