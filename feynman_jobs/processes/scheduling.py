"""RQ's built-in scheduler (`--with-scheduler`), judging which jobs are due by the Redis server's clock.

RQ 3.0's scheduler moves a scheduled job (a delay, a retry's backoff, a hold) to its queue once its
score is below `current_timestamp()`: the clock of whichever worker host holds the scheduler lock. A
host whose clock runs an hour ahead released every job delayed by up to an hour at once (measured by
tests/reliability/test_hosts.py). Here the scheduler reads the Redis server's `TIME` instead
(architecture §5).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import rq.scheduler
from redis import Redis
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler

from feynman_jobs.clock import server_now


# rq-compat(rq==3.0.0): RQScheduler.enqueue_scheduled_jobs reads the module-level current_timestamp();
# it is replaced while the method runs, in the scheduler's own process. Remove when RQ asks Redis
# for the time.
class ServerClockScheduler(RQScheduler):
    """RQ's scheduler, with the Redis server's clock deciding which jobs are due."""

    def enqueue_scheduled_jobs(self) -> None:
        """RQ's move of due jobs to their queues, "due" by the Redis server's clock."""
        with _server_clock(self.connection):
            super().enqueue_scheduled_jobs()  # type: ignore[no-untyped-call]


@contextlib.contextmanager
def _server_clock(connection: Redis) -> Iterator[None]:
    module: Any = rq.scheduler
    own = module.current_timestamp
    module.current_timestamp = lambda: int(server_now(connection).timestamp())
    try:
        yield
    finally:
        module.current_timestamp = own


class ServerClockScheduling:
    """Mixin for the worker: start ServerClockScheduler where RQ starts its RQScheduler."""

    # rq-compat(rq==3.0.0): Worker._start_scheduler, with our scheduler class (RQ names its own).
    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        worker: Any = self
        scheduler: Any = ServerClockScheduler(
            worker.queues,
            connection=worker.connection,
            logging_level=logging_level if logging_level is not None else worker.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=worker.serializer,
        )
        worker.scheduler = scheduler
        scheduler.acquire_locks()
        if not scheduler.acquired_locks:
            return
        if not burst:
            scheduler.start()
            return
        try:
            scheduler.register_birth()
            scheduler.enqueue_scheduled_jobs()
        finally:
            scheduler.release_locks()
            scheduler.register_death()
