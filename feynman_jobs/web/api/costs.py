"""Cost control over HTTP: estimate a job, read cost rollups (budgets and limits: api/control.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feynman_jobs.costs import budget, rollups
from feynman_jobs.costs.estimate import estimate_plan
from feynman_jobs.costs.rollups import CostsQuery
from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.queueing.planning import plan_job
from feynman_jobs.queueing.requests import EnqueueRequest, TypedEnqueueRequest
from feynman_jobs.web.access import clients, job_audiences
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import QUERY_PROBLEM, documented
from feynman_jobs.web.parsing import parse_body, parse_query

bp = api_blueprint("feynman_costs", __name__)

#: Windows returned when the caller gives no `since`.
DEFAULT_WINDOWS = 24


@bp.post("/estimate")
@documented(body=TypedEnqueueRequest, responses={200: None})
@clients
def estimate() -> dict[str, Any]:
    """What a job request would cost (with its follow-up) and whether each budget has room; no writes."""
    ext = extension()
    plans = plan_job(parse_body(EnqueueRequest), ext.settings, audiences=job_audiences())
    estimates = [estimate_plan(plan, ext.settings) for plan in plans]
    total = sum(item.usd_micros for item in estimates)
    budgets = [
        {**window.as_dict(), "fits": total <= window.remaining_micros}
        for window in budget.windows(ext.redis, ext.settings)
    ]
    return {"jobs": [item.as_dict() for item in estimates], "usd": total / 1e6, "budgets": budgets}


@bp.get("/costs")
@documented(query=CostsQuery, responses={200: None}, problems=QUERY_PROBLEM)
@clients
def costs() -> dict[str, Any]:
    """Cost rollups by model and job type; the current window is computed live from the ledger."""
    query = parse_query(CostsQuery)
    length = rollups.WINDOW_LENGTH[query.granularity]
    zone = extension().settings.zone
    current = rollups.window_start(query.granularity, datetime.now(UTC), zone)
    until = query.until or current + length
    since = query.since or until - DEFAULT_WINDOWS * length
    if since >= until:
        raise InvalidRequest("since must be before until", [FieldError("#/query/since", "not before until")])
    if until - since > 2000 * length:
        raise InvalidRequest("the range is too long", [FieldError("#/query/since", "at most 2000 windows")])
    return rollups.costs_document(extension().redis, query.granularity, since, until, zone)
