"""GET /metrics: the Prometheus exposition; any valid token (client or operator) may scrape it."""

from __future__ import annotations

from flask import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from feynman_jobs.ops.prometheus import registry_for
from feynman_jobs.web.access import clients
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension

bp = api_blueprint("feynman_metrics", __name__, url_prefix="")


@bp.get("/metrics")
@clients
def metrics() -> Response:
    """Every metric, read from Redis now."""
    ext = extension()
    body = generate_latest(registry_for(ext.redis, ext.settings))
    return Response(body, content_type=CONTENT_TYPE_LATEST)
