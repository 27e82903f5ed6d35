"""Periodic jobs registered with rq-scheduler under stable ids, so restarts never duplicate them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from redis import Redis
from rq_scheduler import Scheduler

from feynman_jobs import job_events
from feynman_jobs.catalog import CATALOG
from feynman_jobs.queues import JsonJob, JsonQueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """One periodic job: a catalog type, its payload and a cron expression (UTC)."""

    id: str
    type: str
    cron: str
    payload: dict[str, Any]


#: Every periodic job of the service. Ids are stable: a sync replaces, never adds.
PERIODIC: tuple[Periodic, ...] = (
    Periodic("periodic-rollup_costs-hour", "rollup_costs", "*/5 * * * *", {"granularity": "hour"}),
    Periodic("periodic-rollup_costs-day", "rollup_costs", "7 * * * *", {"granularity": "day"}),
)


def scheduler(connection: Redis, interval: float = 5.0) -> Scheduler:
    """An rq-scheduler Scheduler that writes JSON jobs (it has no serializer option of its own)."""
    return Scheduler(connection=connection, interval=interval, job_class=JsonJob, queue_class=JsonQueue)


def sync(connection: Redis) -> list[str]:
    """Make the scheduled set hold exactly PERIODIC: re-register each by id, drop stale ones of ours."""
    sched = scheduler(connection)
    wanted = {periodic.id for periodic in PERIODIC}
    for job in sched.get_jobs():
        if job.id.startswith("periodic-") and job.id not in wanted:
            sched.cancel(job)
            job.delete()
            logger.info("removed stale periodic job id=%s", job.id)
    for periodic in PERIODIC:
        spec = CATALOG[periodic.type]
        if periodic.id in sched:
            sched.cancel(periodic.id)
        sched.cron(
            periodic.cron,
            spec.func,
            kwargs=periodic.payload,
            id=periodic.id,
            queue_name=spec.queue,
            timeout=spec.timeout_s,
            result_ttl=spec.result_ttl or 24 * 3600,
            meta={"max_retries": 0, "follow_up": [], "user": {}},
            on_success=job_events.ON_SUCCESS,
            on_failure=job_events.ON_FAILURE,
        )
        logger.info("registered periodic job id=%s cron=%r", periodic.id, periodic.cron)
    return [periodic.id for periodic in PERIODIC]


def listing(connection: Redis) -> list[dict[str, Any]]:
    """What rq-scheduler holds: id, function, next run time."""
    sched = scheduler(connection)
    return [
        {
            "id": job.id,
            "func": job.func_name,
            "cron": job.meta.get("cron_string"),
            "next_run": when.isoformat(),
        }
        for job, when in sched.get_jobs(with_times=True)
    ]
