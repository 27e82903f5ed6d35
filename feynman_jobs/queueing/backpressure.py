"""Back-pressure: with FEYNMAN_MAX_QUEUED set, a request that would fill a queue past it is refused.

Checked after the idempotency claim (a replay of an existing job still gets it back) and before the
budget reservation and the write, so a refused request writes nothing; a batch is refused whole. The
depth is read, not reserved: enqueues racing each other may pass the limit by the few jobs in flight
(architecture §3).
"""

from __future__ import annotations

from collections import Counter

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.errors import QueueFull
from feynman_jobs.queueing.planning import JobPlan

#: What a refused caller is told to wait: about how long a worker line takes to clear a few jobs.
RETRY_AFTER_S = 10


def check_room(connection: Redis, limit: int | None, plans: list[JobPlan]) -> None:
    """QueueFull naming the first queue that `plans` would fill past `limit` (every planned job counts,
    deferred and scheduled ones too: they join the queue later)."""
    if limit is None or not plans:
        return
    wanted = Counter(plan.queue for plan in plans)
    with connection.pipeline(transaction=False) as pipe:
        for queue in wanted:
            pipe.llen(keys.rq_queue(queue))
        depths = [int(depth) for depth in pipe.execute()]
    for (queue, adding), depth in zip(wanted.items(), depths, strict=True):
        if depth + adding > limit:
            raise QueueFull(queue=queue, depth=depth, limit=limit, adding=adding, retry_after_s=RETRY_AFTER_S)
