"""Timeouts and stops of jobs that run in threads of one worker process (processes/slots.py).

A forked work horse gets RQ's SIGALRM timeout and is killed to stop it. A thread can be neither: only
the main thread receives signals, and nothing kills one thread. So each slot arms a deadline while its
job's function runs, and the worker's overseer raises the timeout (or a stop) inside that thread with
`PyThreadState_SetAsyncExc`. RQ's own TimerDeathPenalty does the same, but starts a timer thread per
job and rewrites the exception class's `__init__` for every thread at once.

Limitation: the exception lands when the thread next runs Python code. A job blocked inside one C call
(a socket read, `time.sleep`) is stopped only when that call returns. Every model call here carries
its own timeout (FEYNMAN_LLM_TIMEOUT_S), which bounds that wait (architecture §4).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from rq.timeouts import BaseDeathPenalty, JobTimeoutException

logger = logging.getLogger(__name__)


class JobStopRequested(BaseException):
    """Raised inside a slot's thread to stop its job (a BaseException: `except Exception` in job code
    must not swallow it)."""


class JobReaped(BaseException):
    """Raised inside a slot's thread whose job was given to another worker meanwhile."""


def timeout_error(exception: type[BaseException], seconds: float) -> type[BaseException]:
    """`exception`, with RQ's timeout message built in (an async exception is raised by class)."""
    message = f"Task exceeded maximum timeout value ({seconds:g} seconds)"

    def __init__(self: BaseException, *_: Any) -> None:
        exception.__init__(self, message)

    return type(exception.__name__, (exception,), {"__init__": __init__, "__module__": exception.__module__})


def raise_in(thread_id: int, exception: type[BaseException] | None) -> bool:
    """Make `thread_id` raise `exception` at its next Python instruction (None: forget a pending one)."""
    found = ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else ctypes.c_void_p(0)
    )
    return bool(found)


@dataclass
class _Armed:
    thread_id: int
    due: float
    timeout: type[BaseException]
    fired: bool = False


class Deadlines:
    """The armed jobs of one worker process, by job id: their thread, deadline and timeout error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: dict[str, _Armed] = {}
        #: Interrupts asked for before the job's function started: raised as soon as it does.
        self._pending: dict[str, type[BaseException]] = {}

    def arm(self, job_id: str, seconds: float, timeout: type[BaseException]) -> None:
        """The calling thread starts `job_id`'s function, due within `seconds` (<= 0: never)."""
        due = time.monotonic() + seconds if seconds > 0 else float("inf")
        with self._lock:
            armed = self._armed[job_id] = _Armed(threading.get_ident(), due, timeout)
            early = self._pending.pop(job_id, None)
            if early is not None:
                armed.fired = raise_in(armed.thread_id, early)

    def disarm(self, job_id: str) -> None:
        """The job's function returned or raised: no interrupt may land after this."""
        with self._lock:
            armed = self._armed.pop(job_id, None)
            self._pending.pop(job_id, None)
            if armed is not None and armed.fired:
                raise_in(armed.thread_id, None)  # one raised but not yet delivered

    def interrupt(self, job_id: str, exception: type[BaseException]) -> None:
        """Raise `exception` in the thread running `job_id`'s function, or as soon as it starts."""
        with self._lock:
            armed = self._armed.get(job_id)
            if armed is None:
                self._pending[job_id] = exception
            elif not armed.fired:
                armed.fired = raise_in(armed.thread_id, exception)

    def forget(self, job_id: str) -> None:
        """Drop a pending interrupt of a job that will not start."""
        with self._lock:
            self._pending.pop(job_id, None)

    def enforce(self) -> list[str]:
        """Raise the timeout in every thread past its deadline; returns their job ids."""
        now = time.monotonic()
        late = []
        with self._lock:
            for job_id, armed in self._armed.items():
                if not armed.fired and now >= armed.due:
                    armed.fired = raise_in(armed.thread_id, armed.timeout)
                    late.append(job_id)
        return late


#: One per process: RQ builds death penalties from a class, with no way to hand them the worker.
DEADLINES = Deadlines()


class SlotDeathPenalty(BaseDeathPenalty):
    """RQ's death penalty interface over `DEADLINES`, for jobs run in any thread."""

    def __init__(
        self, timeout: float, exception: type[BaseException] = JobTimeoutException, **kwargs: Any
    ) -> None:
        super().__init__(timeout, exception, **kwargs)  # type: ignore[no-untyped-call]
        self._job_id = str(kwargs.get("job_id") or f"thread-{threading.get_ident()}")

    def setup_death_penalty(self) -> None:
        """Arm this thread's deadline."""
        DEADLINES.arm(self._job_id, self._timeout, timeout_error(self._exception, self._timeout))

    def cancel_death_penalty(self) -> None:
        """Disarm it."""
        DEADLINES.disarm(self._job_id)
