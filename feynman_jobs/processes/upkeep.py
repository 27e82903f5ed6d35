"""The scheduler process's own upkeep, on timers of its own: never a job waiting behind queued work.

Each tick of rq-scheduler's loop (every `--interval` seconds, under its lock) runs whatever is due:
outcome events folded into the all-time totals, abandoned started jobs and popped-but-never-started
jobs every tick, dependents that can no longer run and budget reservations nobody needs every few
ticks, registry cleanup every minute. With the Procfile's 5 s interval, a job whose worker's key has
expired leaves `started` within one tick (architecture §5).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from feynman_jobs.costs import reservations
from feynman_jobs.lifecycle import cancellation, recovery, tallies

logger = logging.getLogger(__name__)

#: Seconds between runs of each task (at least one scheduler tick apart).
REAP_EVERY_S = 0.0
FOLD_EVERY_S = 0.0
SWEEP_EVERY_S = 10.0
RECONCILE_EVERY_S = 15.0
CLEAN_EVERY_S = 60.0


@dataclass
class Task:
    """One upkeep task and when it is next due (this process's monotonic clock: only a period)."""

    name: str
    every_s: float
    run: Callable[[Redis], Any]
    due: float = field(default=0.0)


def tasks(failure_ttl: int) -> list[Task]:
    """Every upkeep task of the service, in the order a tick runs them."""
    return [
        Task("fold_outcomes", FOLD_EVERY_S, tallies.fold),
        Task("reap_abandoned", REAP_EVERY_S, recovery.reap_abandoned),
        Task("recover_popped", REAP_EVERY_S, recovery.recover_popped),
        Task("settle_deferred", SWEEP_EVERY_S, cancellation.sweep),
        Task("reconcile_reservations", RECONCILE_EVERY_S, reservations.reconcile),
        Task("clean_registries", CLEAN_EVERY_S, lambda conn: recovery.clean(conn, failure_ttl)),
    ]


class Upkeep:
    """Runs the due tasks; a task's own bug is logged and retried next time, a Redis error propagates
    (the scheduler process reconnects)."""

    def __init__(self, failure_ttl: int) -> None:
        self.tasks = tasks(failure_ttl)

    def tick(self, connection: Redis) -> None:
        """Run every task that is due."""
        for task in self.tasks:
            now = time.monotonic()
            if now < task.due:
                continue
            task.due = now + task.every_s
            try:
                result = task.run(connection)
            except RedisError:
                task.due = 0.0
                raise
            except Exception:
                logger.exception("upkeep task %s failed; it runs again next time", task.name)
                continue
            # Each task logs what it changed; this is the trace of every run.
            logger.debug("upkeep %s: %s", task.name, result)
