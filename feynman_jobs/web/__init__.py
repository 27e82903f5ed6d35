"""The web process: an app factory, and the pieces a host Flask app can register on its own."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from feynman_jobs.logs import configure_logging
from feynman_jobs.settings import Settings, load_settings
from feynman_jobs.web import openapi
from feynman_jobs.web.access import init_access
from feynman_jobs.web.api import (
    batches,
    control,
    costs,
    health,
    jobs,
    learners,
    metrics,
    queues,
    search,
    workers,
)
from feynman_jobs.web.extension import init_extension
from feynman_jobs.web.headers import init_headers
from feynman_jobs.web.problems import register_handlers
from feynman_jobs.web.ui import costs_page
from feynman_jobs.web.ui.dashboard import init_dashboard

__all__ = ["create_app", "init_app"]

ROUTE_MODULES = (
    jobs,
    batches,
    queues,
    costs,
    control,
    search,
    learners,
    workers,
    openapi,
    health,
    metrics,
)


def _register(app: Flask, settings: Settings, redis: Redis | None) -> None:
    init_extension(app, settings, redis)
    for module in ROUTE_MODULES:
        app.register_blueprint(module.bp)


def init_app(app: Flask, settings: Settings | None = None, *, redis: Redis | None = None) -> None:
    """Register the API, health and /metrics routes on a host app (no dashboard, no app-wide handlers).

    The access gate (web/access.py) checks the requests of these routes only; the host's own routes
    keep the host's rules.
    """
    _register(app, settings or load_settings(), redis)
    init_access(app, blueprints=frozenset(module.bp.name for module in ROUTE_MODULES))


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> Flask:
    """The feynman_jobs web app: API, health, rq-dashboard at /rq, problem documents for every error.

    `redis` replaces the client built from settings.redis_url (tests pass fakeredis here).
    """
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = Flask("feynman_jobs", static_folder=None)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    _register(app, settings, redis)
    init_access(app)  # every request of this app, the dashboard's included, before anything else runs
    init_dashboard(app, settings)
    app.register_blueprint(costs_page.bp)
    init_headers(app)
    register_handlers(app)
    return app
