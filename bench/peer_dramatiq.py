"""The bench/peers workloads as Dramatiq actors on a Redis broker (its default middleware, no retries).

Worker: `dramatiq bench.peer_dramatiq --processes 1 --threads 8` with BENCH_REDIS_URL set.
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench import peer_jobs

broker = RedisBroker(url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
dramatiq.set_broker(broker)

#: Each workload's actor, by the name bench/peers uses.
ACTORS = {
    name: dramatiq.actor(actor_name=name, max_retries=0)(func) for name, func in peer_jobs.WORKLOADS.items()
}


def send(name: str, count: int) -> None:
    """Queue `count` jobs of one workload."""
    for _ in range(count):
        ACTORS[name].send()
