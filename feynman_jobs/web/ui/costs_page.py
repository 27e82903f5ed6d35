"""`/ui/costs`: spend over time by model and job type, budgets burning down, rate-limit use (operators).

The figures are those of `/api/costs`, `/api/budget` and `/api/limits`, built by the same functions
and written into the page as JSON (escaped by Jinja's `tojson`); `static/costs/costs.js` draws them
with d3 7.9.0, served from the package (no CDN), as SVG, and writes every name with `textContent`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, render_template

from feynman_jobs.clock import period_end, period_start, utc_iso
from feynman_jobs.costs import ratelimit, rollups
from feynman_jobs.web.api.control import budget_document
from feynman_jobs.web.extension import extension

_HERE = Path(__file__).resolve().parent
#: The windows the page draws: hours of the last two days, days of the last thirty.
HOURS_SHOWN = 48
DAYS_SHOWN = 30

bp = Blueprint(
    "feynman_costs_page",
    __name__,
    url_prefix="/ui",
    template_folder=str(_HERE / "templates" / "costs"),
    static_folder=str(_HERE / "static" / "costs"),
    static_url_path="/assets",
)


def _series(granularity: rollups.Granularity, count: int) -> dict[str, Any]:
    """The last `count` windows (the current one included) as /api/costs answers them, plus every
    window's start, so a window without calls is drawn as zero."""
    ext = extension()
    zone = ext.settings.zone
    current = rollups.window_start(granularity, datetime.now(UTC), zone)
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    since = period_start(granularity, current - step * (count - 1) + step / 2, zone)
    until = period_end(granularity, current, zone)
    document = rollups.costs_document(ext.redis, granularity, since, until, zone)
    starts, start = [], since
    while start < until:
        starts.append(utc_iso(start))
        start = period_end(granularity, start, zone)
    return {**document, "starts": starts}


def page_data() -> dict[str, Any]:
    """Everything the page draws."""
    ext = extension()
    return {
        "zone": ext.settings.timezone,
        "generated_at": utc_iso(datetime.now(UTC)),
        "hourly": _series("hour", HOURS_SHOWN),
        "daily": _series("day", DAYS_SHOWN),
        "budget": budget_document(),
        "limits": ratelimit.usage(ext.redis, ext.settings),
    }


@bp.get("/costs")
def costs_page() -> str:
    """The costs page (operators: the dashboard's credentials)."""
    return render_template("costs.html", data=page_data())
