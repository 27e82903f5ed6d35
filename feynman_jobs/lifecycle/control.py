"""Steering jobs and workers: cancel, stop, requeue, pause and resume — RQ's own operations."""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from redis import Redis
from rq.command import send_stop_job_command
from rq.job import JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume as rq_resume
from rq.suspension import suspend as rq_suspend

from feynman_jobs.costs import reservations
from feynman_jobs.errors import JobStateConflict
from feynman_jobs.lifecycle.status import load_job
from feynman_jobs.queueing.wiring import JsonJob

logger = logging.getLogger(__name__)

WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
REQUEUEABLE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)


class PauseRequest(BaseModel):
    """Optional body of POST /api/queues/pause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600, strict=True)] | None = None


def cancel(connection: Redis, job_id: str) -> tuple[JsonJob, str]:
    """Cancel a waiting job, or ask its worker to stop a running one; returns the job and what was done."""
    job = load_job(connection, job_id)
    status = job.get_status()
    if status in WAITING:
        job.cancel()
        reservations.release_job(connection, job.id)
        logger.info("canceled job id=%s (was %s)", job.id, status.value)
        return job, "canceled"
    if status == JobStatus.STARTED:
        send_stop_job_command(connection, job.id, serializer=JSONSerializer)
        logger.info("asked the worker to stop job id=%s", job.id)
        return job, "stopping"
    raise JobStateConflict(
        job.id, status.value, f"job {job.id} already ended ({status.value}); nothing to cancel"
    )


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
    previous = int(job.meta.get("previous_attempts", 0)) + max_retries - (job.retries_left or 0) + 1
    job.meta["previous_attempts"] = previous if status != JobStatus.CANCELED else previous - 1
    job.meta.pop("progress", None)
    job.retries_left = max_retries
    requeued = registry.requeue(job)
    logger.info("requeued job id=%s (was %s)", job.id, status.value)
    assert isinstance(requeued, JsonJob)
    return requeued


def pause(connection: Redis, duration_s: int | None = None) -> None:
    """Tell every worker to take no new job (RQ's suspension), optionally for `duration_s` seconds."""
    rq_suspend(connection, duration_s)


def resume(connection: Redis) -> None:
    """Let workers take jobs again."""
    rq_resume(connection)
