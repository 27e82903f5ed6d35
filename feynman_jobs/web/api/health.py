"""Liveness and readiness: /healthz says the process runs, /readyz that Redis answers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from redis.exceptions import RedisError

from feynman_jobs.web.access import public
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import problem

bp = Blueprint("feynman_health", __name__)


@bp.get("/healthz")
@public
def healthz() -> dict[str, Any]:
    """The web process is up."""
    return {"status": "ok"}


@bp.get("/readyz")
@public
def readyz() -> Any:
    """Ready when Redis answers a PING."""
    try:
        extension().redis.ping()
    except RedisError as exc:
        return problem(
            503, "redis-unavailable", "Not ready", f"Redis cannot be reached: {type(exc).__name__}"
        )
    return {"status": "ready", "redis": "ok"}
