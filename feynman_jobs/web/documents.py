"""Response models of the routes that build their answers as dicts: what the OpenAPI document shows.

schemathesis checks every live response against these in bin/test, so they cannot drift unnoticed.
"""

from __future__ import annotations

from pydantic import BaseModel

from feynman_jobs.queueing.requests import JobStatusDocument


class JobsPage(BaseModel):
    """One page of GET /api/jobs, newest first; pass `next_cursor` back as `cursor`."""

    jobs: list[JobStatusDocument]
    next_cursor: str | None


class BatchCreated(BaseModel):
    """The batch id and every job it enqueued."""

    id: str
    job_ids: list[str]
    jobs: list[JobStatusDocument]


class BatchProgress(BaseModel):
    """Counts by status and the fraction of the batch's jobs that have ended."""

    id: str
    total: int
    counts: dict[str, int]
    done: int
    done_fraction: float
    job_ids: list[str]


class QueueSummary(BaseModel):
    """One queue: depth, every registry's count, age of the oldest waiting job."""

    name: str
    depth: int
    started: int
    scheduled: int
    deferred: int
    failed: int
    finished: int
    canceled: int
    oldest_waiting_s: float | None


class QueuesDocument(BaseModel):
    """Every queue, and whether workers are paused (and for how much longer)."""

    paused: bool
    pause_remaining_s: int | None
    queues: list[QueueSummary]
