"""rq-dashboard at /rq, on our Redis and JSON serializer, never open to the world without credentials."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import rq_dashboard
from flask import Flask, Response, request
from rq.serializers import JSONSerializer

from feynman_jobs.settings import Settings

URL_PREFIX = "/rq"
DASHBOARD_BLUEPRINT = "rq_dashboard"


def init_dashboard(app: Flask, settings: Settings) -> None:
    """Mount rq-dashboard on `app` with basic auth (or loopback-only access when no credentials are set)."""
    from rq_dashboard import web as dashboard_web

    # rq-dashboard keeps its serializer process-wide; every feynman_jobs app uses JSON, so this is safe.
    dashboard_web.config.serializer = JSONSerializer
    app.config["RQ_DASHBOARD_REDIS_URL"] = settings.redis_url
    app.config.setdefault("RQ_DASHBOARD_POLL_INTERVAL", 2500)
    dashboard_web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)

    @app.before_request
    def _guard_dashboard() -> Any:
        if request.blueprint != DASHBOARD_BLUEPRINT:
            return None
        return _check_access(settings)


def _check_access(settings: Settings) -> Response | None:
    if settings.dashboard_user and settings.dashboard_password:
        auth = request.authorization
        user_ok = auth is not None and hmac.compare_digest(
            (auth.username or "").encode(), settings.dashboard_user.encode()
        )
        password_ok = auth is not None and hmac.compare_digest(
            (auth.password or "").encode(), settings.dashboard_password.get_secret_value().encode()
        )
        if user_ok and password_ok:
            return None
        return Response(
            "authentication required", 401, {"WWW-Authenticate": 'Basic realm="feynman_jobs dashboard"'}
        )
    if _is_loopback(request.remote_addr):
        return None
    return Response("the dashboard is served only to loopback clients until credentials are set", 403)


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
