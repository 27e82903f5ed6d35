"""Steering jobs and workers: cancel, stop, requeue, pause and resume — RQ's own operations."""

from __future__ import annotations

import logging

from redis import Redis
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry
from rq.serializers import JSONSerializer
from rq.suspension import resume as rq_resume
from rq.suspension import suspend as rq_suspend

from feynman_jobs.costs import budget
from feynman_jobs.errors import JobNotFound, JobStateConflict
from feynman_jobs.lifecycle.status import JOB_ID
from feynman_jobs.queueing.wiring import JsonJob, fetch_job

logger = logging.getLogger(__name__)

WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)
REQUEUEABLE = (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED)
#: RQ's key for a suspension (pause) of all workers.
SUSPENDED_KEY = "rq:suspended"


def load(connection: Redis, job_id: str) -> JsonJob:
    """A job by id, or JobNotFound."""
    if not JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)
    try:
        return fetch_job(job_id, connection)
    except NoSuchJobError:
        raise JobNotFound(job_id) from None


def cancel(connection: Redis, job_id: str) -> tuple[JsonJob, str]:
    """Cancel a waiting job, or ask its worker to stop a running one; returns the job and what was done."""
    job = load(connection, job_id)
    status = job.get_status()
    if status in WAITING:
        job.cancel()
        budget.release(connection, job.id)
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
    job = load(connection, job_id)
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


def pause_remaining_s(connection: Redis) -> int | None:
    """Seconds until a timed pause ends by itself (None: not paused, or paused until resumed)."""
    ttl = int(connection.ttl(SUSPENDED_KEY))
    return ttl if ttl > 0 else None
