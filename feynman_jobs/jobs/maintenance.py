"""Maintenance as jobs, for running it by hand (`feynman-jobs enqueue`); the scheduler process runs the
same functions on its own timers (processes/upkeep.py), never behind queued work."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs.jobs.context import connection, current_job, log_extra, settings
from feynman_jobs.lifecycle import recovery

logger = logging.getLogger(__name__)


def reap_abandoned_jobs() -> dict[str, Any]:
    """Retry (or fail as abandoned) every started job whose worker's key has expired."""
    job = current_job()
    reaped = recovery.reap_abandoned(connection())
    recovered = recovery.recover_popped(connection())
    if reaped or recovered:
        logger.warning("reaped abandoned jobs %s jobs=%s popped=%s", log_extra(job), reaped, recovered)
    return {"reaped": reaped, "recovered": recovered}


def clean_registries() -> dict[str, Any]:
    """Registry upkeep for every queue, and drop index entries of jobs that have expired."""
    job = current_job()
    result = recovery.clean(connection(), settings().failure_ttl)
    logger.info(
        "cleaned registries %s index_entries_removed=%d", log_extra(job), result["index_entries_removed"]
    )
    return dict(result)
