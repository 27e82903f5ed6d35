"""RFC 9457 problem documents: the only shape an error leaves the API in, from one table.

Every exception class of feynman_jobs.errors has a row (a test holds that true): its status, the
stable slug of its `type` URI, and its title. A subclass without a row of its own takes its nearest
ancestor's. 5xx problems never carry an exception's text to the caller; it goes to the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, json, request
from pydantic import BaseModel
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from feynman_jobs import errors

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:feynman-jobs:problem:"


@dataclass(frozen=True)
class ProblemKind:
    """How one exception class answers: HTTP status, the slug of its problem `type`, its title."""

    status: int
    slug: str
    title: str


#: Exception class -> problem. Looked up along the class's MRO, most specific first.
PROBLEMS: dict[type[Exception], ProblemKind] = {
    errors.InvalidRequest: ProblemKind(422, "invalid-request", "Invalid request"),
    errors.UnknownJobType: ProblemKind(422, "unknown-job-type", "Unknown job type"),
    errors.ReservedNamespace: ProblemKind(422, "reserved-namespace", "Namespace reserved for memories"),
    errors.Unauthorized: ProblemKind(401, "unauthorized", "Unauthorized"),
    errors.Forbidden: ProblemKind(403, "forbidden", "Forbidden"),
    errors.CrossSiteRequest: ProblemKind(403, "cross-site-request", "Cross-site request refused"),
    errors.MalformedBody: ProblemKind(400, "malformed-json", "Malformed JSON"),
    errors.UnsupportedMediaType: ProblemKind(415, "unsupported-media-type", "Unsupported media type"),
    errors.JobNotFound: ProblemKind(404, "job-not-found", "Job not found"),
    errors.BatchNotFound: ProblemKind(404, "batch-not-found", "Batch not found"),
    errors.MemoryNotFound: ProblemKind(404, "memory-not-found", "Memory not found"),
    errors.WorkerNotFound: ProblemKind(404, "worker-not-found", "Worker not found"),
    errors.UnreadableJob: ProblemKind(409, "job-unreadable", "Job data is not JSON"),
    errors.JobStateConflict: ProblemKind(409, "job-state-conflict", "Conflict"),
    errors.IdempotencyKeyInUse: ProblemKind(409, "idempotency-key-in-use", "Request in progress"),
    errors.QueueFull: ProblemKind(503, "queue-full", "Queue full"),
    errors.VectorSpaceMismatch: ProblemKind(409, "vector-space-mismatch", "Indexed with another embedder"),
    errors.BudgetExceeded: ProblemKind(429, "budget-exceeded", "Budget exceeded"),
    errors.HoldJob: ProblemKind(429, "rate-limited", "Try again later"),
    errors.ProviderRateLimited: ProblemKind(429, "provider-rate-limited", "The model provider asks to wait"),
    errors.PermanentJobError: ProblemKind(502, "permanent-job-error", "The job cannot succeed as sent"),
    errors.ProviderError: ProblemKind(502, "provider-error", "The model provider refused the request"),
    errors.ModelOutputError: ProblemKind(502, "model-output", "The model's answer was unusable"),
    errors.RetryableJobError: ProblemKind(503, "provider-unavailable", "The model provider is unavailable"),
    errors.WorkersPaused: ProblemKind(503, "workers-paused", "Workers are paused"),
    errors.ExecutionNotOwned: ProblemKind(409, "execution-not-owned", "The job belongs to someone else"),
    errors.WorkHorseKilled: ProblemKind(500, "work-horse-killed", "The job's process was killed"),
    errors.ReplicationUnconfirmed: ProblemKind(503, "replication-unconfirmed", "Not yet replicated"),
    errors.ConfigError: ProblemKind(500, "configuration", "Service misconfigured"),
    errors.FeynmanError: ProblemKind(500, "internal-error", "Internal error"),
    RedisError: ProblemKind(503, "redis-unavailable", "Service unavailable"),
}
#: What a 5xx says instead of the exception's text.
SERVER_DETAILS = {
    "redis-unavailable": "the job store (Redis) cannot be reached; nothing was written, try again",
    "configuration": "the service is misconfigured",
    "replication-unconfirmed": "no Redis replica confirmed the job in time, so it is not accepted yet; "
    "send the same request again with the same idempotency key",
}
#: Retry-After of a Redis outage.
REDIS_RETRY_AFTER_S = 5


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


def kind_of(error: BaseException) -> ProblemKind | None:
    """The table's row for an exception (its nearest ancestor's), or None when it has none."""
    for cls in type(error).__mro__:
        kind = PROBLEMS.get(cls)
        if kind is not None:
            return kind
    return None


def from_error(error: Exception) -> Response:
    """The problem document of an exception in the table; anything else is a 500 that is logged."""
    kind = kind_of(error)
    if kind is None:
        logger.exception("unhandled error on %s %s", request.method, request.path, exc_info=error)
        return problem(500, "internal-error", "Internal error", "the service failed to handle this request")
    headers: dict[str, str] = {}
    retry_after = getattr(error, "retry_after_s", None)
    if isinstance(error, RedisError):
        logger.warning("redis unavailable: %s", type(error).__name__)
        retry_after = REDIS_RETRY_AFTER_S
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, round(retry_after)))
    if kind.status >= 500 and not getattr(error, "public", False):
        if not isinstance(error, RedisError):
            logger.error("%s on %s %s: %s", kind.slug, request.method, request.path, error)
        detail = SERVER_DETAILS.get(kind.slug, "the service failed to handle this request")
        return problem(kind.status, kind.slug, kind.title, detail, headers=headers)
    fields = error.fields() if isinstance(error, errors.FeynmanError) else {}
    if not fields.get("errors"):
        fields.pop("errors", None)
    return problem(kind.status, kind.slug, kind.title, str(error), headers=headers, **fields)


def _from_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    slug = (error.name or "error").lower().replace(" ", "-")
    response = problem(status, slug, error.name or "Error", error.description or error.name or "error")
    if status == 405 and error.get_response().headers.get("Allow"):
        response.headers["Allow"] = error.get_response().headers["Allow"]
    return response


def register_handlers(target: Flask | Any) -> None:
    """Answer every error raised under `target` (an app or a blueprint) with a problem document."""
    target.register_error_handler(HTTPException, _from_http_exception)
    target.register_error_handler(Exception, from_error)
