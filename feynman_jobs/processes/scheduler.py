"""The scheduler process: rq-scheduler's Scheduler, kept running through Redis outages.

`rqscheduler` exits on the first Redis error (a restart of Redis takes the scheduler down with it).
This runs the same Scheduler class with our JSON job class, syncs the periodic jobs on every
(re)connect, and starts its loop again after an outage, backing off up to 30 s.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
import warnings
from types import FrameType

from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from feynman_jobs.processes import schedules
from feynman_jobs.queueing.wiring import JsonJob, JsonQueue, connect

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


# rq-compat(rq-scheduler==0.14.0): replaces _install_signal_handlers, whose stop handler needs Redis.
# Remove when rq-scheduler's own handler survives an outage and its loop reconnects.
class ResilientScheduler(Scheduler):  # type: ignore[misc]
    """rq-scheduler's Scheduler whose stop signal works even while Redis is unreachable."""

    stopping = False

    def _install_signal_handlers(self) -> None:
        def stop(_signum: int, _frame: FrameType | None) -> None:
            ResilientScheduler.stopping = True
            with contextlib.suppress(RedisError):
                self.register_death()
                self.remove_lock()
            raise SystemExit(0)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)


def run(redis_url: str, interval: float) -> None:
    """Sync the periodic jobs and move due jobs to their queues, forever; reconnect after outages."""
    # crontab warns about a future default on every cron computation rq-scheduler makes.
    warnings.filterwarnings("ignore", category=FutureWarning, module="rq_scheduler")
    backoff = 1.0
    while not ResilientScheduler.stopping:
        connection = connect(redis_url)
        try:
            schedules.sync(connection)
            scheduler = ResilientScheduler(
                connection=connection, interval=interval, job_class=JsonJob, queue_class=JsonQueue
            )
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
