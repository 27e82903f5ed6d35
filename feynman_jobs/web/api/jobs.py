"""Jobs over HTTP: enqueue, read, list, cancel or stop, requeue."""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.lifecycle import control, listing, submit, timeline
from feynman_jobs.lifecycle.listing import JobsPage, ListJobsQuery
from feynman_jobs.lifecycle.status import JobStatusDocument, describe, get_status, load_job
from feynman_jobs.lifecycle.timeline import TimelineDocument
from feynman_jobs.queueing.catalog import CATALOG
from feynman_jobs.queueing.requests import EnqueueRequest, TypedEnqueueRequest
from feynman_jobs.web.access import clients, current_caller, job_audiences, require_owner
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import BUDGET_EXCEEDED, IDEMPOTENCY_IN_USE, UNAVAILABLE, documented
from feynman_jobs.web.parsing import parse_query, read_json_body, validate

bp = api_blueprint("feynman_api", __name__)
JOB_NOT_FOUND = {404: "`job-not-found`: no job with this id, or it expired"}


def with_header_key(body: Any) -> Any:
    """Fold the Idempotency-Key header into the body (they are the same thing; they must agree)."""
    header_key = request.headers.get("Idempotency-Key")
    if header_key is None or not isinstance(body, dict):
        return body
    if body.get("idempotency_key") not in (None, header_key):
        raise InvalidRequest(
            "the Idempotency-Key header and the idempotency_key field differ",
            [FieldError("#/idempotency_key", "differs from the Idempotency-Key header")],
        )
    return {**body, "idempotency_key": header_key}


@bp.post("/jobs")
@documented(
    body=TypedEnqueueRequest,
    responses={202: JobStatusDocument, 200: JobStatusDocument},
    problems={409: IDEMPOTENCY_IN_USE, 429: BUDGET_EXCEEDED, 503: UNAVAILABLE},
    headers={
        "Idempotency-Key": {
            "description": "the same key returns the same job (same as the idempotency_key field)",
            "schema": EnqueueRequest.model_json_schema()["properties"]["idempotency_key"]["anyOf"][0],
        }
    },
    response_headers={"Location": "the URL of the job's status document"},
)
@clients
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Enqueue one job: 202 with its status document (200 and the existing job for a known key)."""
    job_request = validate(EnqueueRequest, with_header_key(read_json_body()), what="job request")
    ext = extension()
    submitted = submit.submit(
        ext.redis, ext.settings, job_request, audiences=job_audiences(), owner=current_caller().owner
    )
    document = describe(ext.redis, submitted.job, fresh=submitted.created)
    location = url_for("feynman_api.read_job", job_id=submitted.job.id)
    return document.model_dump(mode="json"), 202 if submitted.created else 200, {"Location": location}


@bp.get("/jobs/<job_id>")
@documented(responses={200: JobStatusDocument}, problems=JOB_NOT_FOUND)
@clients
def read_job(job_id: str) -> dict[str, Any]:
    """The status document of one job."""
    return get_status(extension().redis, job_id).model_dump(mode="json")


@bp.get("/jobs")
@documented(query=ListJobsQuery, responses={200: JobsPage})
@clients
def list_jobs() -> dict[str, Any]:
    """Jobs newest first, filtered by queue, status and type, a page at a time."""
    query = parse_query(ListJobsQuery)
    if query.type is not None and query.type not in CATALOG:
        raise InvalidRequest(
            "unknown job type", [FieldError("#/query/type", f"must be one of: {', '.join(CATALOG)}")]
        )
    page = listing.list_jobs(
        extension().redis,
        queue=query.queue,
        status=query.status,
        job_type=query.type,
        limit=query.limit,
        cursor=query.cursor,
    )
    return {"jobs": [job.model_dump(mode="json") for job in page.jobs], "next_cursor": page.next_cursor}


@bp.get("/jobs/<job_id>/events")
@documented(responses={200: TimelineDocument}, problems=JOB_NOT_FOUND)
@clients
def read_job_events(job_id: str) -> dict[str, Any]:
    """The job's timeline, oldest first: enqueued, started, failed attempts, holds, retries, its end,
    webhook deliveries."""
    connection = extension().redis
    job = load_job(connection, job_id)
    return TimelineDocument(job_id=job.id, events=timeline.events(connection, job)).model_dump(mode="json")


@bp.post("/jobs/<job_id>/cancel")
@documented(
    responses={200: JobStatusDocument, 202: JobStatusDocument},
    problems={**JOB_NOT_FOUND, 409: "`job-state-conflict`: the job has already ended"},
)
@clients
def cancel_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Cancel a waiting job (200), or ask its worker to stop a running one (202); 409 if it has ended."""
    connection = extension().redis
    require_owner(load_job(connection, job_id).meta.get("owner"), f"job {job_id}")
    job, done = control.cancel(connection, job_id)
    document = describe(connection, load_job(connection, job.id)).model_dump(mode="json")
    return {**document, "action": done}, 200 if done == "canceled" else 202


@bp.post("/jobs/<job_id>/requeue")
@documented(
    responses={202: JobStatusDocument},
    problems={**JOB_NOT_FOUND, 409: "`job-state-conflict`: only failed, stopped or canceled jobs run again"},
)
@clients
def requeue_job(job_id: str) -> tuple[dict[str, Any], int]:
    """Run a failed, stopped or canceled job again (its own credential, or operators); 409 otherwise."""
    connection = extension().redis
    require_owner(load_job(connection, job_id).meta.get("owner"), f"job {job_id}")
    job = control.requeue(connection, job_id)
    return describe(connection, job).model_dump(mode="json"), 202
