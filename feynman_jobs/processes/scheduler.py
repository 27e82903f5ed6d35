"""The scheduler process: rq-scheduler's Scheduler, kept running through Redis outages, plus upkeep.

`rqscheduler` exits on the first Redis error (a restart of Redis takes the scheduler down with it).
This runs the same Scheduler class with our JSON job class, syncs the periodic jobs on every
(re)connect, and starts its loop again after an outage, backing off up to 30 s. Each pass of its loop
also runs the service's upkeep (processes/upkeep.py): abandoned and orphaned jobs, dependents that can
no longer run, leaked reservations — here, because a queued maintenance job would wait behind work.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
import warnings
from types import FrameType
from typing import Any

from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from feynman_jobs.processes import schedules
from feynman_jobs.processes.upkeep import Upkeep
from feynman_jobs.queueing.connection import connect
from feynman_jobs.queueing.wiring import JsonJob, JsonQueue
from feynman_jobs.settings import Settings

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


# rq-compat(rq-scheduler==0.14.0): replaces _install_signal_handlers, whose stop handler needs Redis.
# Remove when rq-scheduler's own handler survives an outage and its loop reconnects.
class ResilientScheduler(Scheduler):  # type: ignore[misc]
    """rq-scheduler's Scheduler whose stop signal works even while Redis is unreachable."""

    stopping = False
    upkeep: Upkeep | None = None

    def enqueue_jobs(self) -> Any:
        """rq-scheduler's move of due jobs to their queues, then the upkeep that is due."""
        jobs = super().enqueue_jobs()
        if self.upkeep is not None:
            self.upkeep.tick(self.connection)
        return jobs

    def _install_signal_handlers(self) -> None:
        def stop(_signum: int, _frame: FrameType | None) -> None:
            ResilientScheduler.stopping = True
            with contextlib.suppress(RedisError):
                self.register_death()
                self.remove_lock()
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)


def run(settings: Settings, interval: float) -> None:
    """Sync the periodic jobs and move due jobs to their queues, and keep the service's upkeep,
    forever; reconnect after outages."""
    # crontab warns about a future default on every cron computation rq-scheduler makes.
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")
    backoff = 1.0
    upkeep = Upkeep(settings.failure_ttl)
    while not ResilientScheduler.stopping:
        connection = connect(settings)
        try:
            schedules.sync(connection)
            scheduler = ResilientScheduler(
                connection=connection, interval=interval, job_class=JsonJob, queue_class=JsonQueue
            )
            scheduler.upkeep = upkeep
            backoff = 1.0
            scheduler.run()
        except RedisError as exc:
            if ResilientScheduler.stopping:
                break
            logger.warning(
                "Redis unavailable (%s); scheduler retrying in %.0f s", type(exc).__name__, backoff
            )
            time.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            connection.close()
