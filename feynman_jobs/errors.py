"""The package's exceptions: one base, no HTTP; the web edge maps them to problem documents."""

from __future__ import annotations

from dataclasses import dataclass


class FeynmanError(Exception):
    """Base of every error feynman_jobs raises on purpose."""


class ConfigError(FeynmanError):
    """A setting from the environment is missing or malformed."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one part of a request: a JSON pointer (RFC 6901) into the body and why."""

    pointer: str
    detail: str


class InvalidRequest(FeynmanError):
    """A request that cannot be accepted as sent; nothing was written."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class UnknownJobType(InvalidRequest):
    """A job type that is not in the catalog."""


class JobNotFound(FeynmanError):
    """No job with this id exists (or it has expired)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id


class JobStateConflict(FeynmanError):
    """The job is not in a state that allows this operation (e.g. cancel a finished job)."""

    def __init__(self, job_id: str, status: str, detail: str) -> None:
        super().__init__(detail)
        self.job_id = job_id
        self.status = status


class IdempotencyKeyInUse(FeynmanError):
    """Another request with the same idempotency key is still being written; ask again shortly."""


class HoldJob(FeynmanError):
    """The job may not spend now (budget or rate limit): hold it and run it again later, not a failure."""

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class RetryableJobError(FeynmanError):
    """A transient failure inside a job; RQ's retry policy should try again."""
