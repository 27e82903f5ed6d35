"""List jobs newest first with a cursor, filtered by queue, status and type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from redis import Redis
from rq.exceptions import NoSuchJobError

from feynman_jobs.lifecycle.status import describe
from feynman_jobs.queueing.requests import JobStatusDocument
from feynman_jobs.queueing.wiring import JsonJob, fetch_job
from feynman_jobs.queueing.writer import INDEX_KEY, index_key

#: Index entries read per round trip, and at most per request (a sparse filter returns a cursor).
PAGE_SCAN = 200
MAX_SCAN = 5000


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
    key = index_key("type", job_type) if job_type else INDEX_KEY
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
            documents.append(describe(connection, fetch_job(job_id, connection)))
        except NoSuchJobError:
            continue
    return Page(documents, str(int(last_score)) if last_score is not None else None)
