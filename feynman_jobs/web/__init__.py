"""The web process: an app factory, and the pieces a host Flask app can register on its own."""

from __future__ import annotations

from flask import Flask
from redis import Redis

from feynman_jobs.logs import configure_logging
from feynman_jobs.settings import Settings, load_settings
from feynman_jobs.web import (
    openapi,
    routes_batches,
    routes_costs,
    routes_health,
    routes_jobs,
    routes_metrics,
    routes_queues,
    routes_search,
)
from feynman_jobs.web.dashboard import init_dashboard
from feynman_jobs.web.extension import init_extension
from feynman_jobs.web.problems import register_handlers

__all__ = ["create_app", "init_app"]

ROUTE_MODULES = (
    routes_jobs,
    routes_batches,
    routes_queues,
    routes_costs,
    routes_search,
    openapi,
    routes_health,
    routes_metrics,
)


def init_app(app: Flask, settings: Settings | None = None, *, redis: Redis | None = None) -> None:
    """Register the API, health and /metrics routes on a host app (no dashboard, no app-wide handlers)."""
    init_extension(app, settings or load_settings(), redis)
    for module in ROUTE_MODULES:
        app.register_blueprint(module.bp)


def create_app(settings: Settings | None = None, *, redis: Redis | None = None) -> Flask:
    """The feynman_jobs web app: API, health, rq-dashboard at /rq, problem documents for every error.

    `redis` replaces the client built from settings.redis_url (tests pass fakeredis here).
    """
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = Flask("feynman_jobs")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    init_app(app, settings, redis=redis)
    init_dashboard(app, settings)
    register_handlers(app)
    return app
