"""The web process: an app factory, and the pieces a host Flask app can register on its own."""

from __future__ import annotations

from flask import Flask

from feynman_jobs.logs import configure_logging
from feynman_jobs.settings import Settings, load_settings
from feynman_jobs.web import (
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


def init_app(app: Flask, settings: Settings | None = None) -> None:
    """Register the API, health and /metrics routes on a host app (no dashboard, no app-wide handlers)."""
    init_extension(app, settings or load_settings())
    for blueprint in (
        routes_jobs.bp,
        routes_batches.bp,
        routes_queues.bp,
        routes_costs.bp,
        routes_search.bp,
        routes_health.bp,
        routes_metrics.bp,
    ):
        app.register_blueprint(blueprint)


def create_app(settings: Settings | None = None) -> Flask:
    """The feynman_jobs web app: API, health, rq-dashboard at /rq, problem documents for every error."""
    settings = settings or load_settings()
    configure_logging(settings.log_level, settings.log_format)
    app = Flask("feynman_jobs")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    init_app(app, settings)
    init_dashboard(app, settings)
    register_handlers(app)
    return app
