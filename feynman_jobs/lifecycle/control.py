"""Steering jobs and workers: cancel, stop, requeue, pause and resume — RQ's own operations."""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from redis import Redis
from rq.command import send_shutdown_command
from rq.job import JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume as rq_resume
from rq.suspension import suspend as rq_suspend

from feynman_jobs import keys
from feynman_jobs.errors import JobStateConflict, WorkerNotFound
from feynman_jobs.lifecycle import cancellation, timeline
from feynman_jobs.lifecycle.status import REASKED_META, RETRIES_FORGONE_META, attempts_of, load_job
from feynman_jobs.queueing.wiring import JsonJob

logger = logging.getLogger(__name__)

REQUEUEABLE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


class PauseRequest(BaseModel):
    """Optional body of POST /api/queues/pause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600, strict=True)] | None = None


def cancel(connection: Redis, job_id: str) -> tuple[JsonJob, str]:
    """Cancel a waiting job (atomically: it never runs), or ask its worker to stop a running one;
    what depends on it is ended too (lifecycle/cancellation.py). Returns the job and what was done."""
    done = cancellation.cancel(connection, job_id)
    return load_job(connection, job_id), done.action


def requeue(connection: Redis, job_id: str) -> JsonJob:
    """Run a failed, stopped or canceled job again, with its full retry policy."""
    job = load_job(connection, job_id)
    status = job.get_status()
    if status not in REQUEUEABLE:
        raise JobStateConflict(
            job.id, status.value, f"only failed, stopped or canceled jobs can be requeued, not {status.value}"
        )
    registry_class = CanceledJobRegistry if status == JobStatus.CANCELED else FailedJobRegistry
    registry = registry_class(job.origin, connection=connection, job_class=JsonJob, serializer=JSONSerializer)
    max_retries = int(job.meta.get("max_retries", 0))
    job.meta["previous_attempts"] = attempts_of(job)
    for stale in ("progress", RETRIES_FORGONE_META, REASKED_META, cancellation.CANCELED_META):
        job.meta.pop(stale, None)
    job.retries_left = max_retries
    requeued = registry.requeue(job)
    timeline.record(connection, requeued, "requeued", was=status.value)
    # A failed or canceled job expires with the failure TTL; requeued, it lives until it ends again.
    for key in (requeued.key, requeued.dependents_key, requeued.dependencies_key, keys.job_events(job.id)):
        connection.persist(key)
    logger.info("requeued job id=%s (was %s)", job.id, status.value)
    assert isinstance(requeued, JsonJob)
    return requeued


def pause(connection: Redis, duration_s: int | None = None) -> None:
    """Tell every worker to take no new job (RQ's suspension), optionally for `duration_s` seconds."""
    rq_suspend(connection, duration_s)


def resume(connection: Redis) -> None:
    """Let workers take jobs again."""
    rq_resume(connection)


def shutdown_worker(connection: Redis, name: str) -> None:
    """Ask a live worker to finish its current job and exit (RQ's shutdown command); WorkerNotFound
    when no worker of that name is alive."""
    key = keys.rq_worker(name)
    # A worker that exited keeps its key for 60 s with a `death` time (RQ's register_death).
    if not connection.exists(key) or connection.hexists(key, "death"):
        raise WorkerNotFound(name)
    send_shutdown_command(connection, name)
    logger.info("asked worker %s to shut down", name)
