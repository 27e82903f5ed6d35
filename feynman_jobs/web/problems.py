"""RFC 9457 problem documents: the only shape an error leaves the API in."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from pydantic import BaseModel
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from feynman_jobs.costs.budget import BudgetExceeded
from feynman_jobs.errors import (
    ConfigError,
    FeynmanError,
    IdempotencyKeyInUse,
    InvalidRequest,
    JobNotFound,
    JobStateConflict,
    UnknownJobType,
)
from feynman_jobs.lifecycle.batches import BatchNotFound

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:feynman-jobs:problem:"


class Problem(BaseModel):
    """The body of every error response (RFC 9457), with per-field `errors` for validation failures."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> Response:
    """A problem+json response; `slug` makes the stable `type` URI."""
    headers = extra.pop("headers", None) or {}
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path if request else None,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    response.headers.update(headers)
    return response


class UnsupportedMediaType(Exception):
    """The body is not sent as application/json."""


class MalformedBody(Exception):
    """The body cannot be read as JSON."""


def _from_feynman_error(error: FeynmanError) -> Response:
    if isinstance(error, UnknownJobType):
        errors = [{"pointer": e.pointer, "detail": e.detail} for e in error.errors]
        return problem(422, "unknown-job-type", "Unknown job type", error.detail, errors=errors)
    if isinstance(error, InvalidRequest):
        errors = [{"pointer": e.pointer, "detail": e.detail} for e in error.errors]
        return problem(422, "invalid-request", "Invalid request", error.detail, errors=errors)
    if isinstance(error, JobNotFound):
        return problem(404, "job-not-found", "Job not found", str(error), job_id=error.job_id)
    if isinstance(error, BatchNotFound):
        return problem(404, "batch-not-found", "Batch not found", str(error), batch_id=error.batch_id)
    if isinstance(error, JobStateConflict):
        return problem(
            409, "job-state-conflict", "Conflict", str(error), job_id=error.job_id, job_status=error.status
        )
    if isinstance(error, BudgetExceeded):
        return problem(
            429,
            "budget-exceeded",
            "Budget exceeded",
            str(error),
            headers={"Retry-After": str(error.retry_after_s)},
            needed_usd=error.needed_micros / 1e6,
            **error.window.as_dict(),
        )
    if isinstance(error, IdempotencyKeyInUse):
        return problem(
            409, "idempotency-key-in-use", "Request in progress", str(error), headers={"Retry-After": "1"}
        )
    if isinstance(error, ConfigError):
        logger.error("configuration error: %s", error)
        return problem(500, "configuration", "Service misconfigured", "the service is misconfigured")
    logger.exception("unhandled feynman_jobs error")
    return problem(500, "internal-error", "Internal error", "the service failed to handle this request")


def _from_redis_error(error: RedisError) -> Response:
    logger.warning("redis unavailable: %s", type(error).__name__)
    return problem(
        503,
        "redis-unavailable",
        "Service unavailable",
        "the job store (Redis) cannot be reached; nothing was written, try again",
        headers={"Retry-After": "5"},
    )


def _from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    slug = (error.name or "error").lower().replace(" ", "-")
    response = problem(status, slug, error.name or "Error", error.description or error.name or "error")
    if status == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def _from_unexpected(error: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "internal-error", "Internal error", "the service failed to handle this request")


def _from_media_type(_error: Exception) -> Response:
    return problem(
        415, "unsupported-media-type", "Unsupported media type", "send the body as application/json"
    )


def _from_malformed(error: Exception) -> Response:
    return problem(400, "malformed-json", "Malformed JSON", f"the request body is not valid JSON: {error}")


def register_handlers(target: Flask | Any) -> None:
    """Answer every error raised under `target` (an app or a blueprint) with a problem document."""
    target.register_error_handler(UnsupportedMediaType, _from_media_type)
    target.register_error_handler(MalformedBody, _from_malformed)
    target.register_error_handler(FeynmanError, _from_feynman_error)
    target.register_error_handler(RedisError, _from_redis_error)
    target.register_error_handler(HTTPException, _from_http_exception)
    target.register_error_handler(Exception, _from_unexpected)
