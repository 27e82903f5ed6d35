"""The bench/peers workloads as Celery tasks on a Redis broker (JSON, no result backend).

Worker: `celery -A bench.peer_celery worker --pool prefork --concurrency N` with BENCH_REDIS_URL set.
Registered without decorators, so the same functions (bench/peer_jobs.py) run under every framework.
"""

from __future__ import annotations

import os

from celery import Celery

from bench import peer_jobs

app = Celery("bench_peers", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)

#: Each workload's task, by the name bench/peers uses.
TASKS = {name: app.task(name=f"bench.{name}")(func) for name, func in peer_jobs.WORKLOADS.items()}


def send(name: str, count: int) -> None:
    """Queue `count` jobs of one workload."""
    for _ in range(count):
        TASKS[name].apply_async()
