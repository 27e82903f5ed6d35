"""Batches over HTTP: enqueue many jobs at once, watch their progress, cancel what is unfinished."""

from __future__ import annotations

from typing import Any, Literal

from flask import url_for
from pydantic import BaseModel, ConfigDict, Field

from feynman_jobs.errors import JobNotFound, UnreadableJob
from feynman_jobs.lifecycle import batches, submit
from feynman_jobs.lifecycle.batches import BatchCreated, BatchProgress
from feynman_jobs.lifecycle.status import describe, load_job
from feynman_jobs.queueing.requests import TypedBatchRequest, parse_batch_request
from feynman_jobs.web.access import clients, current_caller, job_audiences, require_owner
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import BUDGET_EXCEEDED, IDEMPOTENCY_IN_USE, UNAVAILABLE, documented
from feynman_jobs.web.parsing import parse_query, read_json_body

bp = api_blueprint("feynman_batches", __name__)
BATCH_NOT_FOUND = {404: "`batch-not-found`: no batch with this id, or it expired"}


class CreateBatchQuery(BaseModel):
    """`include=jobs` adds every job's status document to the answer (ids only without it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: Literal["jobs"] | None = Field(
        default=None, description="`jobs`: answer with every job's status document too"
    )


@bp.post("/batches")
@documented(
    body=TypedBatchRequest,
    query=CreateBatchQuery,
    responses={202: BatchCreated},
    problems={409: IDEMPOTENCY_IN_USE, 429: BUDGET_EXCEEDED, 503: UNAVAILABLE},
    response_headers={"Location": "the URL of the batch's progress"},
)
@clients
def create_batch() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Enqueue every job of the batch in one transaction (all or nothing): 202 with the batch id and
    the job ids; with `?include=jobs`, each job's status document too."""
    query = parse_query(CreateBatchQuery)
    batch = parse_batch_request(read_json_body())
    ext = extension()
    batch_id, submitted = submit.submit_batch(
        ext.redis, ext.settings, batch.jobs, audiences=job_audiences(), owner=current_caller().owner
    )
    body: dict[str, Any] = {"id": batch_id, "job_ids": [item.job.id for item in submitted]}
    if query.include == "jobs":
        body["jobs"] = [
            describe(ext.redis, item.job, fresh=item.created).model_dump(mode="json") for item in submitted
        ]
    return body, 202, {"Location": url_for("feynman_batches.read_batch", batch_id=batch_id)}


@bp.get("/batches/<batch_id>")
@documented(responses={200: BatchProgress}, problems=BATCH_NOT_FOUND)
@clients
def read_batch(batch_id: str) -> dict[str, Any]:
    """Counts by status and the fraction of the batch's jobs that have ended."""
    return batches.progress(extension().redis, batch_id)


@bp.post("/batches/<batch_id>/cancel")
@documented(responses={200: None}, problems=BATCH_NOT_FOUND)
@clients
def cancel_batch(batch_id: str) -> dict[str, Any]:
    """Cancel every waiting job of the batch and stop the running ones (its own credential, or operators)."""
    connection = extension().redis
    for job_id in batches.job_ids(connection, batch_id):
        try:
            owner = load_job(connection, job_id).meta.get("owner")
        except (JobNotFound, UnreadableJob):
            continue
        # One request made the batch, with one credential: every job of it has the same owner.
        require_owner(owner, f"batch {batch_id}")
        break
    return batches.cancel(connection, batch_id)
