"""Accepted means replicated: an enqueue is answered only once Redis `WAIT` says replicas have it.

Redis replicates asynchronously, so a master that dies right after answering can take a job it
acknowledged with it. `FEYNMAN_REDIS_MIN_REPLICAS` replicas must confirm the write first (default:
as many as the master has online, at most 1; 0 turns the wait off); when they do not within
`WAIT_TIMEOUT_MS`, the request fails with `ReplicationUnconfirmed` (a 503) and the client's retry
with the same idempotency key finds or rewrites the job (architecture §5).
"""

from __future__ import annotations

import time
from typing import Any

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.errors import ReplicationUnconfirmed
from feynman_jobs.settings import Settings

#: Milliseconds the replicas get to confirm a write; replication on one network takes well under 1 ms.
WAIT_TIMEOUT_MS = 500
#: Seconds a process trusts its count of the master's connected replicas (the default's "how many").
REPLICA_COUNT_TTL_S = 2.0

_replica_counts: dict[int, tuple[float, int]] = {}


def confirm(connection: Redis, settings: Settings) -> None:
    """Return once the required replicas have every write made so far; else ReplicationUnconfirmed."""
    wanted = required_replicas(connection, settings)
    if wanted == 0:
        return
    # WAIT covers the writes of the connection it is sent on, and the enqueue's transaction may have
    # used another connection of the pool: a write on this one comes after it in the replication
    # stream, so a replica that has the fence has the job too.
    with connection.pipeline(transaction=False) as pipe:
        pipe.incr(keys.REPLICATION_FENCE)
        pipe.wait(wanted, WAIT_TIMEOUT_MS)
        _, confirmed = pipe.execute()
    if int(confirmed) >= wanted:
        return
    if settings.redis_min_replicas is None and connected_replicas(connection, fresh=True) == 0:
        return  # the replica is gone (a failover left the new master alone): nothing to wait for
    raise ReplicationUnconfirmed(wanted, int(confirmed))


def required_replicas(connection: Redis, settings: Settings) -> int:
    """How many replicas must confirm a write now."""
    if settings.redis_min_replicas is not None:
        return settings.redis_min_replicas
    return min(1, connected_replicas(connection))


def connected_replicas(connection: Redis, *, fresh: bool = False) -> int:
    """The master's online replicas, read at most every REPLICA_COUNT_TTL_S per connection pool."""
    pool = id(connection.connection_pool)
    now = time.monotonic()
    cached = _replica_counts.get(pool)
    if cached is not None and cached[0] > now and not fresh:
        return cached[1]
    count = online_replicas(connection.info("replication"))
    _replica_counts[pool] = (now + REPLICA_COUNT_TTL_S, count)
    return count


def online_replicas(info: dict[str, Any]) -> int:
    """Replicas in `INFO replication` that are online: one still loading its first sync cannot confirm."""
    return sum(
        1
        for name, value in info.items()
        if name.startswith("slave") and isinstance(value, dict) and value.get("state") == "online"
    )
