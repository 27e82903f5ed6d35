"""rollup_costs: fold the cost ledger into hourly or daily rollups; idempotent per window."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs.clock import parse_utc
from feynman_jobs.costs import rollups
from feynman_jobs.jobs.context import connection, current_job, log_extra, settings

logger = logging.getLogger(__name__)


def rollup_costs(granularity: rollups.Granularity, window_start: str | None = None) -> dict[str, Any]:
    """Roll up one window, or (without window_start) every window since the last completed rollup."""
    job = current_job()
    if granularity not in rollups.WINDOW_LENGTH:
        raise ValueError(f"granularity must be hour or day, not {granularity!r}")
    if window_start is not None:
        windows = [rollups.rollup_window(connection(), granularity, parse_utc(window_start), settings().zone)]
    else:
        windows = rollups.catch_up(connection(), granularity, zone=settings().zone)
    logger.info("rolled up %s granularity=%s windows=%d", log_extra(job), granularity, len(windows))
    return {"granularity": granularity, "windows": windows}
