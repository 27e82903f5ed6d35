"""Every exception feynman_jobs raises on purpose: one base, no HTTP.

The web edge maps each class to a problem document with one table (web/problems.py); the CLI turns
them into one-line errors. `fields()` are the machine-readable facts a caller may act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


class FeynmanError(Exception):
    """Base of every error feynman_jobs raises on purpose."""

    #: Seconds after which asking again may succeed (None: asking again will not help).
    retry_after_s: float | None = None

    def fields(self) -> dict[str, Any]:
        """Facts about the error beyond its message (ids, limits), for problem documents."""
        return {}


class ConfigError(FeynmanError):
    """A setting from the environment is missing or malformed."""


# -- requests that cannot be accepted --------------------------------------------------------------


@dataclass(frozen=True)
class FieldError:
    """One problem with one part of a request: a JSON pointer (RFC 6901) into the body and why."""

    pointer: str
    detail: str


def pointer(loc: tuple[int | str, ...], prefix: tuple[str, ...] = ()) -> str:
    """A JSON pointer (RFC 6901, URI fragment form) for a pydantic error location."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in (*prefix, *loc)]
    return "#/" + "/".join(parts) if parts else "#"


def field_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[FieldError]:
    """Pydantic's errors as FieldErrors, each located by a JSON pointer under `prefix`."""
    return [FieldError(pointer(tuple(err["loc"]), prefix), err["msg"]) for err in exc.errors()]


class InvalidRequest(FeynmanError):
    """A request that cannot be accepted as sent; nothing was written."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def fields(self) -> dict[str, Any]:
        return {"errors": [{"pointer": e.pointer, "detail": e.detail} for e in self.errors]}


class UnknownJobType(InvalidRequest):
    """A job type that is not in the catalog."""


class UnsupportedMediaType(FeynmanError):
    """A body sent as anything but application/json."""

    def __init__(self) -> None:
        super().__init__("send the body as application/json")


class MalformedBody(FeynmanError):
    """A body that cannot be read as JSON."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the request body is not valid JSON: {reason}")


class ReservedNamespace(InvalidRequest):
    """A namespace that belongs to learners' memories, named where only shared documents may go."""


# -- who is asking ---------------------------------------------------------------------------------


class Unauthorized(FeynmanError):
    """No credential, or one that is not valid: the caller is not known."""


class Forbidden(FeynmanError):
    """The caller is known, but this credential may not do this."""


class CrossSiteRequest(Forbidden):
    """A state-changing request a browser marks as sent by another site, on an ambient credential."""


# -- things that do not exist, or not in the state asked for -------------------------------------


class JobNotFound(FeynmanError):
    """No job with this id exists (or it has expired)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id

    def fields(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


class BatchNotFound(FeynmanError):
    """No batch with this id exists (or it has expired)."""

    def __init__(self, batch_id: str) -> None:
        super().__init__(f"no batch with id {batch_id!r}")
        self.batch_id = batch_id

    def fields(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id}


class WorkerNotFound(FeynmanError):
    """No live worker has this name (it never existed, or its key expired)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no live worker named {name!r}")
        self.name = name

    def fields(self) -> dict[str, Any]:
        return {"worker_name": self.name}


class MemoryNotFound(FeynmanError):
    """A memory id that is not stored."""


class UnreadableJob(FeynmanError):
    """A job whose stored data is not JSON (another client's serializer): it is never deserialized."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"job {job_id!r} holds data that is not JSON (written by a client that does not use the "
            "JSON serializer); it is not loaded"
        )
        self.job_id = job_id

    def fields(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


class JobStateConflict(FeynmanError):
    """The job is not in a state that allows this operation (e.g. cancel a finished job)."""

    def __init__(self, job_id: str, status: str, detail: str) -> None:
        super().__init__(detail)
        self.job_id = job_id
        self.status = status

    def fields(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "job_status": self.status}


class IdempotencyKeyInUse(FeynmanError):
    """Another request with the same idempotency key is still being written; ask again shortly."""

    retry_after_s = 1.0


class QueueFull(FeynmanError):
    """The queue holds FEYNMAN_MAX_QUEUED jobs already (or would with this request); ask again later."""

    retry_after_s: float
    #: A 5xx whose detail and fields are safe to show: they name only the queue and its numbers.
    public = True

    def __init__(self, *, queue: str, depth: int, limit: int, adding: int, retry_after_s: float) -> None:
        super().__init__(
            f"queue {queue!r} holds {depth} waiting jobs; its limit is {limit} (FEYNMAN_MAX_QUEUED) and "
            f"this request adds {adding}: nothing was enqueued, try again later"
        )
        self.queue, self.depth, self.limit, self.adding = queue, depth, limit, adding
        self.retry_after_s = retry_after_s

    def fields(self) -> dict[str, Any]:
        return {"queue": self.queue, "depth": self.depth, "limit": self.limit, "adding": self.adding}


class ReplicationUnconfirmed(FeynmanError):
    """Redis took the write but fewer replicas than required confirmed it in time (WAIT)."""

    retry_after_s = 1.0

    def __init__(self, wanted: int, confirmed: int) -> None:
        super().__init__(f"{confirmed} of {wanted} replica(s) confirmed the write in time")
        self.wanted = wanted
        self.confirmed = confirmed


class VectorSpaceMismatch(FeynmanError):
    """A namespace indexed with one embedder, written or searched with another: re-index it first."""


# -- money and rate --------------------------------------------------------------------------------


class BudgetExceeded(FeynmanError):
    """Committing `needed_micros` more would pass a budget; `budget` describes that budget."""

    retry_after_s: float

    def __init__(
        self, detail: str, *, budget: dict[str, Any], needed_micros: int, retry_after_s: int
    ) -> None:
        super().__init__(detail)
        self.budget = budget
        self.needed_micros = needed_micros
        self.retry_after_s = retry_after_s

    def fields(self) -> dict[str, Any]:
        return {"needed_usd": self.needed_micros / 1e6, **self.budget}


class HoldJob(FeynmanError):
    """The job may not spend now (budget or rate limit): hold it and run it again later, not a failure."""

    retry_after_s: float

    def __init__(self, reason: str, retry_after_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class ProviderRateLimited(HoldJob):
    """The model provider answered 429: the job is held until its Retry-After, never failed for it."""


# -- inside jobs: what RQ records as an attempt's failure ----------------------------------------


class RetryableJobError(FeynmanError):
    """A transient failure inside a job; RQ's retry policy should try again."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class PermanentJobError(FeynmanError):
    """A failure that trying again cannot fix: the job fails at once, whatever retries it has left."""


class ProviderError(PermanentJobError):
    """An endpoint refused a request in a way that trying again will not fix (4xx but 408, 409, 429)."""


class ModelOutputError(PermanentJobError):
    """The model's answer was not what was asked for, also when asked a second time."""


class WorkHorseKilled(FeynmanError):
    """The work horse running a job died from a signal (SIGKILL, the out-of-memory killer)."""


class WorkersPaused(FeynmanError):
    """A worker's pop found every worker paused (`rq suspend`) and took no job."""


class ExecutionNotOwned(FeynmanError):
    """A worker found that a job it popped was canceled or given to another worker before it started."""
