"""Periodic jobs registered with rq-scheduler under stable ids, so restarts never duplicate them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from rq_scheduler import Scheduler

from feynman_jobs.queueing.catalog import CALLBACKS, CATALOG
from feynman_jobs.queueing.wiring import JsonJob, JsonQueue

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    """One periodic job: a catalog type and its payload, on a cron expression (UTC) or an interval."""

    id: str
    type: str
    payload: dict[str, Any]
    cron: str | None = None
    interval_s: int | None = None


#: Every periodic job of the service. Ids are stable: a sync replaces, never adds.
PERIODIC: tuple[Periodic, ...] = (
    Periodic("periodic-rollup_costs-hour", "rollup_costs", {"granularity": "hour"}, cron="*/5 * * * *"),
    Periodic("periodic-rollup_costs-day", "rollup_costs", {"granularity": "day"}, cron="7 * * * *"),
)
# Maintenance (abandoned jobs, popped jobs, reservations, registries) is not a periodic job: queued
# work would starve it. The scheduler process runs it on its own timers (processes/upkeep.py).


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
        retry = spec.retry()
        # result_ttl=-1: rq-scheduler silently drops a periodic job whose hash has expired.
        common: dict[str, Any] = {
            "kwargs": periodic.payload,
            "id": periodic.id,
            "queue_name": spec.queue,
            # Type and ids only, like every job (architecture §9): RQ logs the description.
            "description": spec.describe(periodic.payload),
            "timeout": spec.timeout_s,
            "result_ttl": -1,
            "meta": {"max_retries": retry.max if retry else 0, "follow_up": [], "user": {}},
            "on_success": CALLBACKS.on_success,
            "on_failure": CALLBACKS.on_failure,
        }
        if periodic.cron:
            job = sched.cron(periodic.cron, spec.func, **common)
        else:
            job = sched.schedule(datetime.now(UTC), spec.func, interval=periodic.interval_s, **common)
        # rq-compat(rq-scheduler==0.14.0): its job factory takes no on_stopped and no retry; set them
        # on the job it made, as RQ's Job.create would. Remove when rq-scheduler passes them through.
        job._stopped_callback_name = CALLBACKS.on_stopped.name
        job._stopped_callback_timeout = CALLBACKS.on_stopped.timeout
        if retry is not None:
            job.retries_left = retry.max
            job.retry_intervals = retry.intervals
        job.save()
        logger.info(
            "registered periodic job id=%s every=%s", periodic.id, periodic.cron or periodic.interval_s
        )
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
