"""Budgets and rate limits at run time: read them (clients), set them and reset the total (operators)."""

from __future__ import annotations

from typing import Any

from feynman_jobs.costs import budget, control, ratelimit
from feynman_jobs.costs.control import BudgetUpdate, LimitsUpdate
from feynman_jobs.web.access import clients, current_caller
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import documented
from feynman_jobs.web.parsing import parse_body

bp = api_blueprint("feynman_control", __name__)


def changed_by() -> str:
    """Who makes a change, as the logs and GET documents show it: a token's fingerprint, else how the
    operator came in (basic auth, loopback); never the credential itself."""
    caller = current_caller()
    return f"{caller.via}:{caller.owner}" if caller.owner else caller.via


def budget_document() -> dict[str, Any]:
    """Each budget in force with its spend, and where every budget's value comes from."""
    ext = extension()
    windows = budget.windows(ext.redis, ext.settings)
    inflight = budget.windows(ext.redis, ext.settings, pool=budget.INFLIGHT)
    in_force = control.budgets(ext.redis, ext.settings)
    reset_at, reset_by = control.total_reset(ext.redis)
    return {
        "budgets": [{**window.as_dict(), **in_force[window.name].as_dict()} for window in windows],
        "inflight_usd": inflight[0].reserved_micros / 1e6 if inflight else 0.0,
        "limits_configured": bool(windows),
        "settings": {name: {"limit_usd": item.value, **item.as_dict()} for name, item in in_force.items()},
        "total_reset_at": reset_at,
        "total_reset_by": reset_by,
    }


@bp.get("/budget")
@documented(responses={200: None})
@clients
def read_budget() -> dict[str, Any]:
    """Each budget in force: limit, spent, reserved, remaining, reset time; where each value comes from."""
    return budget_document()


@bp.put("/budget")
@documented(body=BudgetUpdate, responses={200: None})
def set_budget() -> dict[str, Any]:
    """Set budgets for every process at once (null: no limit); the environment's value is overridden."""
    ext = extension()
    control.set_budgets(ext.redis, ext.settings, parse_body(BudgetUpdate).changes(), who=changed_by())
    return budget_document()


@bp.post("/budget/reset-total")
@documented(responses={200: None})
def reset_total_budget() -> dict[str, Any]:
    """Start the total budget afresh; the ledger and the rollups keep every call."""
    control.reset_total(extension().redis, who=changed_by())
    return budget_document()


@bp.get("/limits")
@documented(responses={200: None})
@clients
def read_limits() -> dict[str, Any]:
    """Each rate limit of chat and embeddings calls: limit and source, used in its window, when it frees."""
    ext = extension()
    return {"limits": ratelimit.usage(ext.redis, ext.settings)}


@bp.put("/limits")
@documented(body=LimitsUpdate, responses={200: None})
def set_limits() -> dict[str, Any]:
    """Set rate limits for every process at once (null: no limit); the environment's value is overridden."""
    ext = extension()
    control.set_limits(ext.redis, parse_body(LimitsUpdate).changes(), who=changed_by())
    return {"limits": ratelimit.usage(ext.redis, ext.settings)}
