"""`feynman-jobs doctor`'s replication check: where the master is, and whether enqueues can be confirmed."""

from __future__ import annotations

from redis import Redis

from feynman_jobs.ops.findings import Finding
from feynman_jobs.queueing.connection import master_address
from feynman_jobs.queueing.replication import online_replicas
from feynman_jobs.settings import Settings


def sentinel_master(connection: Redis, settings: Settings) -> str:
    """The master the sentinels name, as doctor's findings say it."""
    host, port = master_address(connection)
    return f"master {host}:{port} (Sentinel {settings.redis_sentinel_master!r})"


def check_replication(connection: Redis, settings: Settings) -> Finding:
    """The master (as the sentinels name it), its connected replicas, and the replicas WAIT asks for."""
    info = connection.info("replication")
    replicas = online_replicas(info)
    where = f"{sentinel_master(connection, settings)}, " if settings.redis_sentinels else ""
    wanted = settings.redis_min_replicas
    if info.get("role") != "master":
        role = info.get("role")
        return Finding("redis-replication", False, f"{where}connected to a {role}, not the master")
    if wanted is not None and wanted > replicas:
        return Finding(
            "redis-replication",
            False,
            f"{where}{replicas} replica(s) online but FEYNMAN_REDIS_MIN_REPLICAS={wanted}: "
            "every enqueue will be refused with a 503 until enough replicas are online",
        )
    waits = min(1, replicas) if wanted is None else wanted
    detail = f"{where}{replicas} replica(s) online; an enqueue waits for {waits}"
    if replicas == 0:
        # One Redis with append-only persistence is a supported deployment; say what it cannot survive.
        detail += " (no replica: losing the Redis host's disk loses jobs; see docs/scaling.md)"
    return Finding("redis-replication", True, detail)
