"""Queues over HTTP: what each holds, pause and resume, throughput and timing stats."""

from __future__ import annotations

from typing import Any

from feynman_jobs.lifecycle import control
from feynman_jobs.lifecycle.control import PauseRequest
from feynman_jobs.ops import snapshot, throughput
from feynman_jobs.ops.snapshot import QueuesDocument
from feynman_jobs.ops.throughput import StatsQuery
from feynman_jobs.web.access import clients
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import QUERY_PROBLEM, documented
from feynman_jobs.web.parsing import parse_body, parse_query

bp = api_blueprint("feynman_queues", __name__)


def _document() -> dict[str, Any]:
    ext = extension()
    return snapshot.queues_document(ext.redis, ext.settings.max_queued).model_dump(mode="json")


@bp.get("/queues")
@documented(responses={200: QueuesDocument})
@clients
def read_queues() -> dict[str, Any]:
    """Per queue: depth, registry counts, age of the oldest waiting job; and whether work is paused."""
    return _document()


@bp.post("/queues/pause")
@documented(body=PauseRequest, body_optional=True, responses={200: QueuesDocument})
def pause_queues() -> dict[str, Any]:
    """Stop workers taking new jobs (running ones finish), for `duration_s` or until resumed (operators)."""
    body = parse_body(PauseRequest, optional=True)
    control.pause(extension().redis, body.duration_s)
    return _document()


@bp.post("/queues/resume")
@documented(responses={200: QueuesDocument})
def resume_queues() -> dict[str, Any]:
    """Let workers take jobs again (operators)."""
    control.resume(extension().redis)
    return _document()


@bp.get("/stats")
@documented(query=StatsQuery, responses={200: None}, problems=QUERY_PROBLEM)
@clients
def read_stats() -> dict[str, Any]:
    """Throughput, wait and run time p50/p95 and success rate over `window` seconds, by type and queue."""
    query = parse_query(StatsQuery)
    return throughput.window_stats(extension().redis, query.window)
