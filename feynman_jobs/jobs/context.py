"""What a running job needs from RQ: its Redis, its identity, progress reporting and cost recording."""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import ParamSpec, TypeVar

from redis import Redis
from rq import Retry, get_current_job
from rq.job import Job

from feynman_jobs.clock import server_now
from feynman_jobs.costs import ledger, reservations
from feynman_jobs.errors import HoldJob
from feynman_jobs.lifecycle import timeline
from feynman_jobs.lifecycle.status import REASKED_META
from feynman_jobs.providers.chat import CallKind
from feynman_jobs.queueing.catalog import type_of
from feynman_jobs.settings import Settings, load_settings

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
#: How many times one job may be held (by budgets or rate limits) before RQ gives up on it.
MAX_HOLDS = 10_000

_settings: Settings | None = None
#: The execution a worker slot's thread runs (processes/slots.py); unset in a forked work horse.
_slot = threading.local()


def settings() -> Settings:
    """The settings of this worker process, read once."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def current_job() -> Job:
    """The RQ job being performed (job functions only run inside a worker)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("this function runs as an RQ job, inside a worker")
    return job


def connection() -> Redis:
    """The Redis connection of the current job."""
    return current_job().connection


def log_extra(job: Job) -> str:
    """Type, id and queue of a job, for every job log line."""
    return f"type={type_of(job.func_name)} id={job.id} queue={job.origin}"


def set_progress(fraction: float, message: str | None = None) -> None:
    """Report progress (0..1) of the current job; the status document shows it."""
    job = current_job()
    job.meta["progress"] = {
        "fraction": round(max(0.0, min(1.0, fraction)), 4),
        "message": message,
        "updated_at": datetime.now(UTC).isoformat(),
    }
    job.save_meta()
    logger.debug("progress %s fraction=%.2f %s", log_extra(job), fraction, message or "")


def execution_id() -> str:
    """The id of the RQ execution running this job ('' outside one)."""
    # rq-compat(rq==3.0.0): RQ_EXECUTION_ID is set by RQ's SpawnWorker, and by processes/worker.py for
    # the forking worker; a worker slot (processes/slots.py) runs in a thread of a shared process and
    # binds its own. Remove when RQ gives a job its execution directly.
    return getattr(_slot, "execution_id", None) or os.environ.get("RQ_EXECUTION_ID", "")


def bind_execution(execution: str) -> None:
    """Name the execution this thread runs from now on ('' when it runs none): for worker slots."""
    _slot.execution_id = execution


def model_call(
    model: str, tokens_in: int, tokens_out: int, *, remote: bool, kind: CallKind = "chat"
) -> AbstractContextManager[None]:
    """Guard one model call of the current job: budgets and rate limits (raises HoldJob)."""
    job = current_job()
    timeout = job.timeout if job.timeout and job.timeout > 0 else reservations.DEFAULT_TIMEOUT_S
    return reservations.guard_call(
        job.connection,
        settings(),
        job.id,
        model=model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        remote=remote,
        kind=kind,
        execution_id=execution_id(),
        ttl_s=int(timeout) + reservations.MARGIN_S,
    )


def take_reask() -> bool:
    """True once per job: the one time an invalid model answer may be sent back to the model."""
    job = current_job()
    if job.get_meta(refresh=True).get(REASKED_META):
        return False
    job.meta[REASKED_META] = True
    job.save_meta()
    return True


def holdable(func: Callable[P, R]) -> Callable[P, R | Retry]:
    """Turn HoldJob from a job into RQ's retry-by-return: the job waits, scheduled, and never fails for it."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Retry:
        job = current_job()
        if job.meta.pop("held", None) is not None:
            job.save_meta()
        try:
            return func(*args, **kwargs)
        except HoldJob as hold:
            delay = max(1, math.ceil(hold.retry_after_s))
            # The Redis server's clock, as the retry it becomes (queueing/wiring.JsonJob).
            until = server_now(job.connection) + timedelta(seconds=delay)
            job.meta["held"] = {"reason": hold.reason, "until": until.isoformat()}
            job.save_meta()
            timeline.record_attempt_end(
                job.connection, job, "held", reason=hold.reason, until=until.isoformat()
            )
            logger.warning("holding %s for %ds: %s", log_extra(job), delay, hold.reason)
            # rq-compat(rq==3.0.0): a job returning Retry is rescheduled without counting as a failure
            # (RQ >= 2.3). Re-check on an rq upgrade: holds must never use up the job's retries.
            return Retry(max=MAX_HOLDS, interval=[delay])

    return wrapper


def record_usage(model: str, tokens_in: int, tokens_out: int) -> None:
    """Record one model call made by the current job in the cost ledger."""
    job = current_job()
    usd = ledger.cost_usd_micros(settings().prices, model, tokens_in, tokens_out)
    ledger.record_call(
        job.connection,
        model=model,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        usd_micros=usd,
        job_id=job.id,
        job_type=type_of(job.func_name),
        zone=settings().zone,
    )
