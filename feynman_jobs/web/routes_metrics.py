"""GET /metrics: the Prometheus exposition, behind the API tokens when they are set."""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feynman_jobs.ops.prometheus import registry_for
from feynman_jobs.web.auth import require_token
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import register_handlers

bp = Blueprint("feynman_metrics", __name__)
register_handlers(bp)


@bp.before_request
def _authenticate() -> Response | None:
    return require_token(extension().settings)


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric, read from Redis now."""
    ext = extension()
    body = generate_latest(registry_for(ext.redis, ext.settings))
    return Response(body, content_type=CONTENT_TYPE_LATEST)
