"""List jobs newest first with a cursor, filtered by queue, status and type."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.errors import JobNotFound, UnreadableJob
from feynman_jobs.lifecycle.status import JobStatusDocument, JobStatusWord, describe, load_job
from feynman_jobs.queueing.wiring import JsonJob, QueueName

logger = logging.getLogger(__name__)

#: Index entries read per round trip, and at most per request (a sparse filter returns a cursor).
PAGE_SCAN = 200
MAX_SCAN = 5000


class ListJobsQuery(BaseModel):
    """Filters and paging of GET /api/jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue: QueueName | None = None
    status: JobStatusWord | None = None
    type: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")] | None = None


class JobsPage(BaseModel):
    """One page of GET /api/jobs, newest first; pass `next_cursor` back as `cursor`."""

    jobs: list[JobStatusDocument]
    next_cursor: str | None


@dataclass(frozen=True)
class Page:
    """One page of jobs and the cursor of the next (None at the end)."""

    jobs: list[JobStatusDocument]
    next_cursor: str | None


def list_jobs(
    connection: Redis,
    *,
    queue: str | None = None,
    status: str | None = None,
    job_type: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """Jobs enqueued through the service, newest first; pages stay stable while new jobs arrive.

    The cursor is the index position of the last job returned: newer jobs sort above it, so they
    never shift later pages.
    """
    key = keys.jobs_by_type(job_type) if job_type else keys.JOBS_INDEX
    below = f"({int(cursor)}" if cursor else "+inf"
    found: list[str] = []
    scanned = 0
    last_score: float | None = None
    stale: list[str] = []
    while len(found) < limit and scanned < MAX_SCAN:
        entries = cast(
            list[tuple[bytes, float]],
            connection.zrevrangebyscore(key, below, "-inf", start=0, num=PAGE_SCAN, withscores=True),
        )
        if not entries:
            last_score = None
            break
        with connection.pipeline(transaction=False) as pipe:
            for member, _ in entries:
                pipe.hmget(JsonJob.key_for(member.decode()), ["status", "origin"])
            fields = pipe.execute()
        for (member, score), (job_status, origin) in zip(
            entries, cast(list[list[bytes]], fields), strict=True
        ):
            scanned += 1
            last_score = score
            job_id = member.decode()
            if job_status is None:
                stale.append(job_id)  # expired: its index entry goes too
            elif (status is None or job_status.decode() == status) and (
                queue is None or origin.decode() == queue
            ):
                found.append(job_id)
                if len(found) == limit:
                    break
        below = f"({int(last_score)}" if last_score is not None else below
        if len(entries) < PAGE_SCAN and len(found) < limit:
            last_score = None
            break
    if stale:
        connection.zrem(key, *stale)
    documents = []
    for job_id in found:
        try:
            documents.append(describe(connection, load_job(connection, job_id)))
        except JobNotFound:
            continue
        except UnreadableJob:
            logger.warning("listing skips job id=%s: its data is not JSON", job_id)
    return Page(documents, str(int(last_score)) if last_score is not None else None)
