"""Batches over HTTP: enqueue many jobs at once, watch their progress, cancel what is unfinished."""

from __future__ import annotations

from typing import Any

from flask import url_for
from pydantic import ValidationError

from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.lifecycle import batches
from feynman_jobs.lifecycle.status import describe
from feynman_jobs.queueing import writer
from feynman_jobs.queueing.requests import BatchRequest, EnqueueRequest, field_errors
from feynman_jobs.web.blueprints import api_blueprint, read_json_body
from feynman_jobs.web.documents import BatchCreated, BatchProgress
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import documented
from feynman_jobs.web.routes_jobs import BUDGET_EXCEEDED, IDEMPOTENCY_IN_USE

bp = api_blueprint("feynman_batches", __name__)
BATCH_NOT_FOUND = {404: "`batch-not-found`: no batch with this id, or it expired"}


def _parse(body: Any) -> list[EnqueueRequest]:
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", [FieldError("#", "not an object")])
    try:
        batch = BatchRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest("the batch request is invalid", field_errors(exc)) from None
    requests: list[EnqueueRequest] = []
    errors: list[FieldError] = []
    for index, item in enumerate(batch.jobs):
        try:
            requests.append(EnqueueRequest.model_validate(item))
        except ValidationError as exc:
            errors.extend(field_errors(exc, ("jobs", str(index))))
    if errors:
        raise InvalidRequest("some jobs of the batch are invalid; none was enqueued", errors)
    return requests


@bp.post("/batches")
@documented(
    body=BatchRequest,
    responses={202: BatchCreated},
    problems={409: IDEMPOTENCY_IN_USE, 429: BUDGET_EXCEEDED},
    response_headers={"Location": "the URL of the batch's progress"},
)
def create_batch() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Enqueue every job of the batch in one transaction (all or nothing): 202 with the batch id."""
    requests = _parse(read_json_body())
    ext = extension()
    batch_id, submitted = writer.submit_batch(ext.redis, ext.settings, requests)
    body = {
        "id": batch_id,
        "job_ids": [item.job.id for item in submitted],
        "jobs": [
            describe(ext.redis, item.job, fresh=item.created).model_dump(mode="json") for item in submitted
        ],
    }
    return body, 202, {"Location": url_for("feynman_batches.read_batch", batch_id=batch_id)}


@bp.get("/batches/<batch_id>")
@documented(responses={200: BatchProgress}, problems=BATCH_NOT_FOUND)
def read_batch(batch_id: str) -> dict[str, Any]:
    """Counts by status and the fraction of the batch's jobs that have ended."""
    return batches.progress(extension().redis, batch_id)


@bp.post("/batches/<batch_id>/cancel")
@documented(responses={200: None}, problems=BATCH_NOT_FOUND)
def cancel_batch(batch_id: str) -> dict[str, Any]:
    """Cancel every waiting job of the batch and stop the running ones."""
    return batches.cancel(extension().redis, batch_id)
