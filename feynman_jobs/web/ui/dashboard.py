"""rq-dashboard at /rq, on our Redis and JSON, with pages that show every job field as text.

Who may open it is decided by the app's gate (web/access.py): operators only. What rq-dashboard
0.9.0 gets wrong on rq 3.0, and how each is fixed here (architecture §9, §10):

- it reads jobs through module globals with RQ's default binary serializer in places, and its
  requeue routes deserialized binary data from Redis: the globals and four views are replaced
  (web/ui/dashboard_views.py);
- its pages build HTML from job descriptions, results, meta and errors with unescaped templates and
  inline script: our templates (web/ui/templates/rq_dashboard/) replace its own, and our scripts
  (web/ui/static/dashboard/) write every field as text, under a CSP without inline script;
- `/rq/requeue/<queue>` also answered GET: every action is POST only;
- an unknown job id raised NoSuchJobError out of its views: a 404 problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rq_dashboard
from flask import Blueprint, Flask, Response, current_app, request
from rq.exceptions import NoSuchJobError
from rq.serializers import JSONSerializer

from feynman_jobs import keys
from feynman_jobs.queueing.wiring import QUEUE_NAMES
from feynman_jobs.settings import Settings
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import problem
from feynman_jobs.web.ui import dashboard_views

URL_PREFIX = "/rq"
DASHBOARD_BLUEPRINT = "rq_dashboard"
_HERE = Path(__file__).parent


def init_dashboard(app: Flask, settings: Settings) -> None:
    """Mount rq-dashboard on `app`, reading with JSON and rendering with our templates and scripts."""
    from rq_dashboard import web as dashboard_web

    # rq-compat(rq-dashboard==0.9.0): it reads its serializer, its Job/Queue/Worker classes and
    # requeue_job from module globals; we replace them. Remove once it takes them per app. Every
    # feynman_jobs app uses JSON, so setting them again for each app is harmless.
    dashboard_web.config.serializer = JSONSerializer
    dashboard_web.Job = dashboard_views.DashboardJob
    dashboard_web.Queue = dashboard_views.DashboardQueue
    dashboard_web.Worker = dashboard_views.DashboardWorker
    dashboard_web.requeue_job = _no_requeue_job
    # Its instance list shows this URL's host (the password masked); reads go through our client.
    app.config["RQ_DASHBOARD_REDIS_URL"] = (settings.redis_url,)
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    # rq-compat(rq-dashboard==0.9.0): our templates replace its own by name, and our script reads its
    # JSON routes. Registered before its blueprint, so they are found first (Flask searches blueprint
    # template folders in registration order). Remove when it escapes every field and has no inline script.
    app.register_blueprint(
        Blueprint(
            "feynman_dashboard",
            __name__,
            template_folder=str(_HERE / "templates"),
            static_folder=str(_HERE / "static" / "dashboard"),
            static_url_path=f"{URL_PREFIX}/assets",
        )
    )
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # rq-compat(rq-dashboard==0.9.0): four of its views replaced (web/ui/dashboard_views.py).
    app.view_functions.update(dashboard_views.REPLACED_VIEWS)
    # rq-compat(rq-dashboard==0.9.0): its before_request opened a client of RQ_DASHBOARD_REDIS_URL on
    # every request naming an instance (a new pool per request, and never through the sentinels): ours
    # hands every view the app's own client. Remove when it takes a connection per app.
    app.before_request_funcs[DASHBOARD_BLUEPRINT] = [
        _use_our_redis if func is dashboard_web.push_rq_connection else func
        for func in app.before_request_funcs.get(DASHBOARD_BLUEPRINT, [])
    ]

    @app.before_request
    def _dashboard_rules() -> Any:
        if request.blueprint != DASHBOARD_BLUEPRINT:
            return None
        if request.endpoint in dashboard_views.ACTIONS and request.method != "POST":
            return problem(
                405, "method-not-allowed", "Method not allowed", "dashboard actions are POST only",
                headers={"Allow": "POST"},
            )  # fmt: skip
        _register_queues()
        return None

    @app.errorhandler(NoSuchJobError)
    def _unknown_job(error: NoSuchJobError) -> Response:
        return problem(404, "job-not-found", "Job not found", "no job with this id (or it has expired)")


def _use_our_redis() -> Response | None:
    if (request.view_args or {}).get("instance_number", 0) != 0:
        return problem(404, "not-found", "Not found", "this dashboard shows one Redis: instance 0")
    current_app.redis_conn = extension().redis  # type: ignore[attr-defined]
    return None


def _no_requeue_job(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("rq-dashboard's requeue_job reads binary job data: its views are replaced")


def _register_queues() -> None:
    # rq-dashboard lists only queues in RQ's `rq:queues` set, which RQ fills on a queue's first
    # enqueue; an idempotent SADD makes all three show from the start (and after a flush).
    connection = extension().redis
    connection.sadd(keys.RQ_QUEUES, *(keys.rq_queue(name) for name in QUEUE_NAMES))
