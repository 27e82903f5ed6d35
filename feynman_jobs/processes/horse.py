"""A work horse never outlives its worker, nor its worker's standing with Redis.

RQ's work horse calls `setpgrp()`, so a worker parent killed alone (`kill -9`, the OOM killer, a
supervisor that signals only the main pid) used to leave its horse running, unseen, while the job was
retried elsewhere: two runs, two model calls. With PR_SET_PDEATHSIG the kernel sends the horse SIGKILL
the moment its parent dies. And a worker cut off from Redis kills its own horse (`Fence`) before its
key can expire, which is when the scheduler may give the job to another worker (architecture §5).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

#: prctl(2) option: the signal the calling process gets when its parent (the forking thread) dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Ask the kernel to SIGKILL this process when its parent dies; exit now if it already has.

    Call it first thing in the child after a fork, with the parent's pid from before the fork. Returns
    False where the kernel offers no such signal (not Linux), where the horse can outlive its worker.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return False
    # The parent may have died between the fork and the prctl: then the signal will never come, and
    # this process has already been handed to another parent.
    if os.getppid() != parent_pid:
        os._exit(1)
    return True


def kill_fresh_horse(horse_pid: int, sig: int) -> bool:
    """Signal a horse that is not yet the leader of its own process group, by pid; True if it was one
    (or is gone). False: it has its own group, which the caller may signal as a whole."""
    try:
        if os.getpgid(horse_pid) == horse_pid:
            return False
        os.kill(horse_pid, sig)
    except ProcessLookupError:
        pass
    return True


class Fence:
    """A watchdog thread in the worker parent: once the worker has gone `limit_s` without a heartbeat
    that Redis accepted, it kills the running horse — wherever the worker's main thread is blocked (a
    partitioned connection can hang a Redis call for most of a minute)."""

    def __init__(self, limit_s: float, horse: Callable[[], int], kill: Callable[[], None]) -> None:
        self.limit_s = limit_s
        self._horse = horse
        self._kill = kill
        self._last_beat = time.monotonic()
        self._fenced = 0
        self._thread: threading.Thread | None = None

    def beat(self, sent_at: float) -> None:
        """A heartbeat sent at `sent_at` (monotonic, taken before sending it) was accepted."""
        self._last_beat = max(self._last_beat, sent_at)

    def start(self) -> None:
        """Start watching (once; the thread lives as long as the worker)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="fence", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(1.0)
            pid, silent = self._horse(), time.monotonic() - self._last_beat
            if pid and pid != self._fenced and silent > self.limit_s:
                self._fenced = pid
                logger.warning(
                    "no heartbeat for %.0f s: killing work horse %d before the job is reaped", silent, pid
                )
                self._kill()
