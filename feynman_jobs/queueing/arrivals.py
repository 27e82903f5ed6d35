"""Wakes a worker waiting for work the moment a job arrives in any of its queues, without taking the job.

Redis blocks on several lists only to pop from them (BLPOP, BLMPOP: RQ's own worker pops its queues
that way, and the job is then in no list at all) and moves from one list only (BLMOVE). The recorded
pop (queueing/pending.py) must move the job in one step, so it can block on one queue only. Here one
thread per queue blocks instead with `BLMOVE queue queue RIGHT RIGHT`, which moves a list's last element
to its own tail, so changes nothing, and returns as soon as the list has an element; the waiting pop is
then woken and takes the job with its recorded pop. A job in `default` or `low` reaching an idle worker
is taken at once instead of after the pop's bounded wait (architecture §5).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from redis import Redis

logger = logging.getLogger(__name__)

#: Longest one watcher's blocking command lasts (shorter if the connection's socket timeout is).
WATCH_S = 5.0
#: After a failed watch (Redis unreachable), how long a watcher rests; the pop keeps looking meanwhile.
RETRY_S = 1.0


class Arrivals:
    """The watchers of one worker's queues, started at the first wait; `wait` returns when a job arrives."""

    def __init__(self, connection: Redis, queue_keys: list[str]) -> None:
        self.connection = connection
        self.queue_keys = list(queue_keys)
        self.pid = os.getpid()
        self._changed = threading.Condition()
        self._generation = 0  # one per wait: a watcher that woke one wait rests until the next
        self._waiting = False
        self._arrived = False
        self._closed = False
        self._started = False
        timeout = connection.connection_pool.connection_kwargs.get("socket_timeout")
        self._watch_s = WATCH_S if not timeout else max(0.1, min(WATCH_S, float(timeout) - 1.0))

    def wait(self, seconds: float) -> bool:
        """Until a job is in one of the queues (True) or `seconds` have passed (False)."""
        with self._changed:
            if not self._started:
                self._started = True
                for key in self.queue_keys:
                    threading.Thread(
                        target=self._watch, args=(key,), name=f"arrivals-{key}", daemon=True
                    ).start()
            self._generation += 1
            self._waiting, self._arrived = True, False
            self._changed.notify_all()
            try:
                return self._changed.wait_for(lambda: self._arrived, seconds)
            finally:
                self._waiting = False

    def close(self) -> None:
        """Stop the watchers (each after its current blocking command)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _watch(self, key: str) -> None:
        woke_in = 0
        while self._rest_until_asked(woke_in):
            try:
                # Redis takes a fractional timeout; redis-py's annotation says int.
                timeout: Any = self._watch_s
                found = self.connection.blmove(key, key, timeout, "RIGHT", "RIGHT")
            except Exception as exc:  # a watcher outlives any failure: the pop looks anyway
                logger.debug("watching %s for arrivals failed (%s)", key, exc)
                time.sleep(RETRY_S)
                continue
            if found is not None:
                with self._changed:
                    woke_in = self._generation
                    if self._waiting:
                        self._arrived = True
                        self._changed.notify_all()

    def _rest_until_asked(self, woke_in: int) -> bool:
        """Until a pop waits (and not the one this watcher already woke); False once closed."""
        with self._changed:
            self._changed.wait_for(lambda: self._closed or (self._waiting and self._generation != woke_in))
            return not self._closed


_watching: dict[tuple[str, tuple[str, ...]], Arrivals] = {}
_lock = threading.Lock()


def for_worker(connection: Redis, worker_name: str, queue_keys: list[str]) -> Arrivals:
    """The watchers of this worker's queues in this process (new ones after a fork or for a new client)."""
    key = (worker_name, tuple(queue_keys))
    with _lock:
        arrivals = _watching.get(key)
        if arrivals is None or arrivals.connection is not connection or arrivals.pid != os.getpid():
            if arrivals is not None:
                arrivals.close()
            arrivals = _watching[key] = Arrivals(connection, queue_keys)
        return arrivals
