"""Problem documents (RFC 9457) from the service, as typed exceptions carrying the problem's fields."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_TYPE_PREFIX = "urn:feynman-jobs:problem:"


class FeynmanClientError(Exception):
    """Base of every error the client raises."""


class ProblemError(FeynmanClientError):
    """The service answered with a problem document; its fields are attributes, the rest in `extra`."""

    def __init__(self, status: int, document: dict[str, Any], retry_after_s: float | None = None) -> None:
        self.status = status
        self.type = str(document.get("type", ""))
        self.slug = self.type.removeprefix(PROBLEM_TYPE_PREFIX)
        self.title = str(document.get("title", ""))
        self.detail = str(document.get("detail", ""))
        self.errors: list[dict[str, str]] = list(document.get("errors") or [])
        known = {"type", "title", "status", "detail", "instance", "errors"}
        self.extra = {key: value for key, value in document.items() if key not in known}
        self.retry_after_s = retry_after_s
        super().__init__(f"{status} {self.slug}: {self.detail}")


class InvalidRequestError(ProblemError):
    """422: the request fails validation; `errors` points at each bad field."""


class UnauthorizedError(ProblemError):
    """401: no credential, or one the service does not know."""


class ForbiddenError(ProblemError):
    """403: the credential may not do this."""


class NotFoundError(ProblemError):
    """404: no such job, batch, worker or memory (or it expired)."""


class ConflictError(ProblemError):
    """409: the job is not in a state for this (e.g. cancel an ended job), or a key is in use."""


class RateLimitedError(ProblemError):
    """429: a budget or rate limit; `retry_after_s` says when asking again may work."""


class ServiceUnavailableError(ProblemError):
    """503: a full queue (`queue-full`) or Redis unreachable; retried by the client before raised."""


class WaitTimeout(FeynmanClientError, TimeoutError):
    """`wait` gave up before the job ended; `document` is the last status document seen."""

    def __init__(self, job_id: str, document: dict[str, Any]) -> None:
        super().__init__(f"job {job_id} is still {document.get('status')}")
        self.document = document


_BY_STATUS: dict[int, type[ProblemError]] = {
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    429: RateLimitedError,
    503: ServiceUnavailableError,
}


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the service sends seconds, never a date)."""
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def raise_for_problem(response: httpx.Response) -> None:
    """Raise the typed ProblemError of an error response (also one that is not a problem document)."""
    if response.status_code < 400:
        return
    try:
        document = response.json()
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    document.setdefault("detail", response.reason_phrase)
    cls = _BY_STATUS.get(response.status_code, ProblemError)
    raise cls(response.status_code, document, retry_after(response))
