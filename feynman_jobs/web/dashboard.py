"""rq-dashboard at /rq, on our Redis and JSON serializer, never open to the world without credentials.

rq-dashboard 0.9.0 breaks on rq 3.0 in two places, both fixed by the thin subclasses
below, which its views pick up through its module globals `Job` and `Worker`:

- job detail JSON calls `.decode()` on each of `Job.dependency_ids`, which rq >= 2.6 returns as str;
- `workers.json` builds workers without a serializer, so a busy worker's current job is read
  with RQ's default (non-JSON) serializer.

An unknown job id raises NoSuchJobError out of its views; we answer that with a 404 problem.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import rq_dashboard
from flask import Flask, Response, request
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.serializers import JSONSerializer

from feynman_jobs import keys
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob, JsonQueue
from feynman_jobs.settings import Settings
from feynman_jobs.web.auth import token_is_valid
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import problem

URL_PREFIX = "/rq"
DASHBOARD_BLUEPRINT = "rq_dashboard"


# rq-compat(rq-dashboard==0.9.0): remove when its job view accepts str dependency ids.
class DashboardJob(JsonJob):
    """A JSON job whose dependency ids are bytes, as rq-dashboard 0.9.0 (written for rq < 2.6) expects."""

    @property
    def dependency_ids(self) -> list[bytes]:  # type: ignore[override]
        return [job_id.encode() for job_id in super().dependency_ids]


# rq-compat(rq-dashboard==0.9.0): remove when workers.json builds workers with the app's serializer.
class DashboardWorker(Worker):
    """A worker view that reads its current job with JSON, whatever rq-dashboard passes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = kwargs.get("job_class") or JsonJob
        kwargs["queue_class"] = kwargs.get("queue_class") or JsonQueue
        super().__init__(*args, **kwargs)


def init_dashboard(app: Flask, settings: Settings) -> None:
    """Mount rq-dashboard on `app` behind our auth (loopback-only access when no credentials are set)."""
    from rq_dashboard import web as dashboard_web

    # rq-compat(rq-dashboard==0.9.0): it reads its serializer and its Job/Worker classes from module
    # globals; we replace them. Remove once rq-dashboard takes a serializer and classes per app.
    # rq-dashboard keeps its serializer and classes process-wide; every feynman_jobs app uses JSON,
    # so setting them again for each app is harmless and the shared blueprint stays untouched.
    dashboard_web.config.serializer = JSONSerializer
    dashboard_web.Job = DashboardJob
    dashboard_web.Worker = DashboardWorker
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    dashboard_web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)

    @app.before_request
    def _guard_dashboard() -> Any:
        if request.blueprint != DASHBOARD_BLUEPRINT:
            return None
        refused = check_access(settings)
        if refused is None:
            _register_queues()
        return refused

    @app.errorhandler(NoSuchJobError)
    def _unknown_job(error: NoSuchJobError) -> Response:
        return problem(404, "job-not-found", "Job not found", "no job with this id (or it has expired)")


def _register_queues() -> None:
    # rq-dashboard lists only queues in RQ's `rq:queues` set, which RQ fills on a queue's first
    # enqueue; an idempotent SADD makes all three show from the start (and after a flush).
    connection = extension().redis
    connection.sadd(keys.RQ_QUEUES, *(keys.rq_queue(name) for name in QUEUE_NAMES))


def check_access(settings: Settings) -> Response | None:
    """None when the request may see the dashboard: basic auth, an API token, or loopback without creds."""
    user, password = settings.dashboard_user, settings.dashboard_password
    has_password = bool(user and password)
    if not has_password and not settings.api_tokens:
        if _is_loopback(request.remote_addr):
            return None
        return Response("the dashboard is served only to loopback clients until credentials are set", 403)
    if user and password and _basic_auth_is_valid(user, password.get_secret_value()):
        return None
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented and token_is_valid(settings, presented.strip()):
        return None
    challenge = 'Basic realm="feynman_jobs dashboard"' if has_password else 'Bearer realm="feynman_jobs"'
    return Response("authentication required", 401, {"WWW-Authenticate": challenge})


def _basic_auth_is_valid(user: str, password: str) -> bool:
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return False
    # Compare both parts every time, so timing says nothing about which one was wrong.
    user_ok = hmac.compare_digest((auth.username or "").encode(), user.encode())
    password_ok = hmac.compare_digest((auth.password or "").encode(), password.encode())
    return user_ok and password_ok


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
