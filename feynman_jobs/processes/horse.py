"""A work horse never outlives its worker: Linux's parent-death signal, set right after the fork.

RQ's work horse calls `setpgrp()`, so a worker parent killed alone (`kill -9`, the OOM killer, a
supervisor that signals only the main pid) used to leave its horse running, unseen, while the job was
retried elsewhere: two runs, two model calls. With PR_SET_PDEATHSIG the kernel sends the horse SIGKILL
the moment its parent dies (architecture §5).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

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
