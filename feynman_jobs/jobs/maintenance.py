"""Maintenance jobs run by the scheduler: reap jobs whose worker died, clean registries and indexes."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs.jobs.context import connection, current_job, log_extra
from feynman_jobs.lifecycle import recovery

logger = logging.getLogger(__name__)


def reap_abandoned_jobs(stale_after_s: int = recovery.STALE_AFTER_S) -> dict[str, Any]:
    """Retry (or fail as abandoned) every started job whose worker stopped heartbeating."""
    job = current_job()
    reaped = recovery.reap_abandoned(connection(), stale_after_s, skip=job.id)
    if reaped:
        logger.warning("reaped abandoned jobs %s jobs=%s", log_extra(job), reaped)
    return {"reaped": reaped}


def clean_registries() -> dict[str, Any]:
    """RQ's registry cleanup for every queue, and drop index entries of jobs that have expired."""
    job = current_job()
    result = recovery.clean(connection())
    logger.info(
        "cleaned registries %s index_entries_removed=%d orphans_requeued=%d",
        log_extra(job),
        result["index_entries_removed"],
        result["orphans_requeued"],
    )
    return dict(result)
