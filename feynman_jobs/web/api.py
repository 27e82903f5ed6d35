"""The JSON API blueprint (DESIGN §5): enqueue a job, read its status."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request, url_for

from feynman_jobs import enqueue
from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.schemas import EnqueueRequest, JobStatusDocument, TypedEnqueueRequest, parse_enqueue_request
from feynman_jobs.status import describe, get_status
from feynman_jobs.web.auth import require_token
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import document_for, documented
from feynman_jobs.web.problems import problem, register_handlers

bp = Blueprint("feynman_api", __name__, url_prefix="/api")
register_handlers(bp)


@bp.before_request
def _authenticate() -> Response | None:
    return require_token(extension().settings)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body() -> Any:
    """The request body as JSON, or a 4xx problem: wrong media type, too large, not UTF-8, not JSON."""
    if not request.mimetype or request.mimetype != "application/json":
        raise _UnsupportedMediaType()
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise _MalformedJson("it is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        message = (
            str(exc) if isinstance(exc, json.JSONDecodeError) else "nested too deeply or a number too large"
        )
        raise _MalformedJson(message) from None


class _UnsupportedMediaType(Exception):
    pass


class _MalformedJson(Exception):
    pass


@bp.errorhandler(_UnsupportedMediaType)
def _unsupported_media_type(_error: Exception) -> Response:
    return problem(
        415, "unsupported-media-type", "Unsupported media type", "send the body as application/json"
    )


@bp.errorhandler(_MalformedJson)
def _malformed_json(error: Exception) -> Response:
    return problem(400, "malformed-json", "Malformed JSON", f"the request body is not valid JSON: {error}")


@bp.post("/jobs")
@documented(
    body=TypedEnqueueRequest,
    responses={202: JobStatusDocument, 200: JobStatusDocument},
    problems={409: "`idempotency-key-in-use`: a request with this key is still being written; retry shortly"},
    headers={
        "Idempotency-Key": {
            "description": "the same key returns the same job (same as the idempotency_key field)",
            "schema": EnqueueRequest.model_json_schema()["properties"]["idempotency_key"]["anyOf"][0],
        }
    },
    response_headers={"Location": "the URL of the job's status document"},
)
def create_job() -> tuple[dict[str, Any], int, dict[str, str]]:
    """Enqueue one job: 202 with its status document (200 and the existing job for a known key)."""
    body = read_json_body()
    header_key = request.headers.get("Idempotency-Key")
    if header_key is not None and isinstance(body, dict):
        if body.get("idempotency_key") not in (None, header_key):
            raise InvalidRequest(
                "the Idempotency-Key header and the idempotency_key field differ",
                [FieldError("#/idempotency_key", "differs from the Idempotency-Key header")],
            )
        body = {**body, "idempotency_key": header_key}
    job_request = parse_enqueue_request(body)
    ext = extension()
    submitted = enqueue.submit(ext.redis, ext.settings, job_request)
    document = describe(ext.redis, submitted.job)
    location = url_for("feynman_api.read_job", job_id=submitted.job.id)
    return document.model_dump(mode="json"), 202 if submitted.created else 200, {"Location": location}


@bp.get("/jobs/<job_id>")
@documented(
    responses={200: JobStatusDocument}, problems={404: "`job-not-found`: no job with this id, or it expired"}
)
def read_job(job_id: str) -> dict[str, Any]:
    """The status document of one job."""
    return get_status(extension().redis, job_id).model_dump(mode="json")


@bp.get("/openapi.json")
@documented(responses={200: None})
def openapi_document() -> dict[str, Any]:
    """This API's OpenAPI 3.1 document."""
    return document_for(current_app)
