"""Batch progress and cancellation over the job ids a batch was created with."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel
from redis import Redis
from rq.job import JobStatus

from feynman_jobs import keys, redisio
from feynman_jobs.errors import BatchNotFound, JobNotFound, JobStateConflict
from feynman_jobs.lifecycle import cancellation
from feynman_jobs.lifecycle.status import JobStatusDocument
from feynman_jobs.queueing.wiring import JsonJob

DONE = {JobStatus.FINISHED.value, JobStatus.FAILED.value, JobStatus.STOPPED.value, JobStatus.CANCELED.value}


class BatchCreated(BaseModel):
    """The batch id and the id of every job it enqueued (in the order sent; a consolidation's
    follow-up is named in its status document). `jobs`, the status documents in the same order, only
    with `?include=jobs`: each is one GET /api/jobs/<id> away otherwise."""

    id: str
    job_ids: list[str]
    jobs: list[JobStatusDocument] | None = None


class BatchProgress(BaseModel):
    """Counts by status and the fraction of the batch's jobs that have ended."""

    id: str
    total: int
    counts: dict[str, int]
    done: int
    done_fraction: float
    job_ids: list[str]


def job_ids(connection: Redis, batch_id: str) -> list[str]:
    """The ids of a batch's jobs (follow-ups included), in the order they were created."""
    ids = [redisio.text(raw) for raw in connection.lrange(keys.batch(batch_id), 0, -1)]
    if not ids:
        raise BatchNotFound(batch_id)
    return ids


def progress(connection: Redis, batch_id: str) -> dict[str, Any]:
    """Counts by status and the fraction of jobs that have ended (an expired job counts as ended)."""
    ids = job_ids(connection, batch_id)
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(JsonJob.key_for(job_id), "status")
        statuses = [redisio.text(raw) if raw else "expired" for raw in pipe.execute()]
    counts = Counter(statuses)
    done = sum(count for status, count in counts.items() if status in DONE or status == "expired")
    return {
        "id": batch_id,
        "total": len(ids),
        "counts": dict(sorted(counts.items())),
        "done": done,
        "done_fraction": round(done / len(ids), 4),
        "job_ids": ids,
    }


def cancel(connection: Redis, batch_id: str) -> dict[str, Any]:
    """Cancel every waiting job of the batch and stop every running one (their dependents end too)."""
    outcome: Counter[str] = Counter()
    ended: set[str] = set()
    for job_id in job_ids(connection, batch_id):
        if job_id in ended:  # ended with a job of the batch it depended on
            outcome["canceled"] += 1
            continue
        try:
            done = cancellation.cancel(connection, job_id)
        except (JobStateConflict, JobNotFound):
            outcome["already_ended"] += 1
            continue
        outcome[done.action] += 1
        ended.update(done.cascaded)
    return {
        "id": batch_id,
        "canceled": outcome["canceled"],
        "stopping": outcome["stopping"],
        "already_ended": outcome["already_ended"],
    }
