"""The three workloads of bench/peers as plain functions, run unchanged by every framework compared.

Each records when it started and ended (one RPUSH to `DONE`), so throughput is read the same way for
RQ, Celery and Dramatiq: jobs divided by the time from the first start to the last end. Under RQ the
record goes through the job's own connection (a forked work horse would otherwise open a new one per
job); elsewhere through one connection per process, opened on first use.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from redis import Redis

#: The list every job appends "start end" (epoch seconds) to.
DONE = "bench:peers:done"
#: The chat-completions request of the 2 s workload: a short analysis prompt, as a job of ours sends.
CHAT_BODY = {
    "model": "test-model",
    "response_format": {"type": "json_object"},
    "messages": [
        {"role": "system", "content": "You are a Feynman tutor. Analyze the learner's explanation as JSON."},
        {"role": "user", "content": "Topic: photosynthesis. Learner: plants turn light into sugar."},
    ],
}

_own: Redis | None = None


def noop() -> None:
    """Nothing but the record: what is left is the framework's own cost."""
    _record(time.time())


def sleep_50ms() -> None:
    """A short job of fixed length."""
    started = time.time()
    time.sleep(0.05)
    _record(started)


def call_provider() -> None:
    """One chat-completions call to the fake provider (BENCH_PROVIDER_URL), on a new HTTP client per call
    as our analysis job does; fails on any answer but 200."""
    # Imported here: a plain RQ work horse imports this module on every job, and the other two
    # workloads should not pay for httpx there.
    import httpx

    started = time.time()
    response = httpx.post(os.environ["BENCH_PROVIDER_URL"] + "/chat/completions", json=CHAT_BODY, timeout=60)
    response.raise_for_status()
    _record(started)


def _record(started: float) -> None:
    global _own
    # Under RQ (already imported by its worker, never imported here for the peers), the job's connection.
    rq = sys.modules.get("rq")
    job = rq.get_current_job() if rq is not None else None
    if job is not None:
        connection = job.connection
    else:
        if _own is None:
            _own = Redis.from_url(os.environ["BENCH_REDIS_URL"])
        connection = _own
    connection.rpush(DONE, f"{started} {time.time()}")


#: The workloads by name, in the order of the table's columns.
WORKLOADS: dict[str, Callable[[], None]] = {
    "noop": noop,
    "sleep_50ms": sleep_50ms,
    "call_provider": call_provider,
}
