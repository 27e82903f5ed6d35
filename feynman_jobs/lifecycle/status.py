"""The status document of a job, read from what RQ and the jobs store in Redis (architecture §3)."""

from __future__ import annotations

import re
import zlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from redis import Redis
from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import JobStatus
from rq.results import Result

from feynman_jobs import keys, redisio
from feynman_jobs.errors import JobNotFound, UnreadableJob
from feynman_jobs.lifecycle import deliveries
from feynman_jobs.lifecycle.deliveries import Delivery
from feynman_jobs.queueing.catalog import type_of
from feynman_jobs.queueing.wiring import JOB_ID_PATTERN, JsonJob, fetch_job

#: The last line of a Python traceback: "module.ExceptionType: message".
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
JOB_ID = re.compile(JOB_ID_PATTERN)
#: Results RQ keeps per job (its stream is capped at 10).
_RESULTS_SCANNED = 10


JobStatusWord = Literal[
    "queued", "scheduled", "deferred", "started", "finished", "failed", "stopped", "canceled"
]


class Progress(BaseModel):
    """Progress reported from inside a running job."""

    fraction: float
    message: str | None = None
    updated_at: datetime | None = None


class JobError(BaseModel):
    """Why a job failed: the exception's type and message, never a traceback."""

    type: str
    message: str


class Cost(BaseModel):
    """Model usage recorded for this job."""

    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0
    calls: int = 0


class Held(BaseModel):
    """Why a job waits (a budget or a rate limit) and when it runs again; it is not failed."""

    reason: str
    until: datetime


class JobStatusDocument(BaseModel):
    """Everything a caller may want to know about one job."""

    id: str
    type: str
    queue: str
    status: str
    attempts: int
    max_retries: int
    retries_left: int
    progress: Progress | None
    created_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    result: Any | None
    error: JobError | None
    depends_on: list[str]
    follow_up: list[str]
    batch_id: str | None
    #: Its name inside its batch's dependency graph, if it was given one.
    ref: str | None = None
    cost: Cost
    worker_name: str | None
    held: Held | None = None
    meta: dict[str, Any]
    #: The webhook asked for at enqueue ({url, events}), and each delivery made so far.
    webhook: dict[str, Any] | None = None
    webhook_deliveries: list[Delivery] = []


#: What reading a job another client wrote with another serializer raises (JSON of binary bytes,
#: text that is not UTF-8); such a job is refused, never deserialized any other way.
NOT_JSON = (DeserializationError, ValueError, TypeError, zlib.error)


def load_job(connection: Redis, job_id: str) -> JsonJob:
    """A job by id: JobNotFound (also for an id RQ could never have made), UnreadableJob if not JSON."""
    if not JOB_ID.fullmatch(job_id):
        raise JobNotFound(job_id)
    try:
        job = fetch_job(job_id, connection)
        _ = job.func_name  # reads the job's data now, with JSON: a job that is not JSON stops here
    except NoSuchJobError:
        raise JobNotFound(job_id) from None
    except NOT_JSON:
        raise UnreadableJob(job_id) from None
    return job


def latest_result(job: JsonJob) -> Result | None:
    """The job's latest result, or None when there is none or it was not written as JSON."""
    try:
        return job.latest_result()
    except NOT_JSON:
        return None


def get_status(connection: Redis, job_id: str) -> JobStatusDocument:
    """The status document of one job; JobNotFound when it does not exist or has expired."""
    return describe(connection, load_job(connection, job_id))


#: Where a job's meta keeps the retries a permanent error took away (lifecycle/outcomes.py).
RETRIES_FORGONE_META = "retries_forgone"
#: Set in a job's meta once an invalid model answer has been sent back (once per job, jobs/context.py).
REASKED_META = "reasked"


def attempts_of(job: JsonJob) -> int:
    """Attempts made so far: earlier runs' (before a requeue) plus this run's, counted from retries."""
    status = job.get_status(refresh=False)
    max_retries = int(job.meta.get("max_retries", job.retries_left or 0))
    retries_left = job.retries_left if job.retries_left is not None else 0
    # RQ counts retries down, not up; a permanent error zeroes the ones left without using them.
    used = max_retries - retries_left - int(job.meta.get(RETRIES_FORGONE_META, 0))
    attempts = int(job.meta.get("previous_attempts", 0)) + max(0, used)
    if status in (JobStatus.STARTED, JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED):
        attempts += 1
    return attempts


def describe(connection: Redis, job: JsonJob, *, fresh: bool = False) -> JobStatusDocument:
    """Build the status document from a fetched job (`fresh`: just created, so no result, error or cost)."""
    status = job.get_status(refresh=False)
    max_retries = int(job.meta.get("max_retries", job.retries_left or 0))
    retries_left = job.retries_left if job.retries_left is not None else 0
    attempts = attempts_of(job)
    progress = job.meta.get("progress")
    hook = job.meta.get("webhook")
    return JobStatusDocument(
        id=job.id,
        type=type_of(job.func_name),
        queue=job.origin,
        status=status.value,
        attempts=attempts,
        max_retries=max_retries,
        retries_left=retries_left,
        progress=Progress.model_validate(progress) if isinstance(progress, dict) else None,
        created_at=job.created_at,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        result=_return_value(job) if status == JobStatus.FINISHED and not fresh else None,
        error=_last_error(connection, job) if status != JobStatus.FINISHED and not fresh else None,
        # rq-compat(rq==3.0.0): _dependency_ids, because dependency_ids fetches nothing but is a list of str
        # only since rq 2.6; the private list is what every rq 2.x/3.0 stores. Remove with a public getter.
        depends_on=list(job._dependency_ids),
        follow_up=list(job.meta.get("follow_up", [])),
        batch_id=job.meta.get("batch_id"),
        ref=job.meta.get("ref"),
        cost=Cost() if fresh else _cost(connection, job.id),
        worker_name=job.worker_name or None,
        held=Held.model_validate(job.meta["held"])
        if status == JobStatus.SCHEDULED and job.meta.get("held")
        else None,
        meta=dict(job.meta.get("user", {})),
        webhook=hook,
        webhook_deliveries=[] if fresh or not hook else deliveries.of_job(connection, job.id),
    )


def parse_exception(exc_string: str) -> JobError:
    """The exception type and message from a traceback, without the traceback."""
    lines = [line for line in exc_string.strip().splitlines() if line and not line.startswith(" ")]
    last = lines[-1] if lines else exc_string.strip()
    match = _EXCEPTION_LINE.match(last)
    if not match:
        return JobError(type="Error", message=last[:2000])
    return JobError(type=match["type"].rsplit(".", 1)[-1], message=(match["message"] or "")[:2000])


def _return_value(job: JsonJob) -> Any:
    latest = latest_result(job)
    return latest.return_value if latest is not None and latest.type == Result.Type.SUCCESSFUL else None


def _last_error(connection: Redis, job: JsonJob) -> JobError | None:
    status = job.get_status(refresh=False)
    if status == JobStatus.STOPPED:
        return JobError(type="JobStopped", message="the job was stopped while running")
    if status == JobStatus.CANCELED:
        reason = job.meta.get("canceled") or {"type": "JobCanceled", "message": "the job was canceled"}
        return JobError(type=str(reason["type"]), message=str(reason["message"]))
    attempts = job.meta.get("attempt_errors")
    if attempts:
        last = attempts[-1]
        return JobError(type=str(last["type"]), message=str(last["message"]))
    # Not recorded by our worker hook (a killed work horse, a worker without the hook): ask RQ.
    for result_id, payload in redisio.xrevrange(connection, Result.get_key(job.id), _RESULTS_SCANNED):
        try:
            result = Result.restore(
                job.id, result_id.decode(), payload, connection=connection, serializer=job.serializer
            )
        except NOT_JSON:
            continue
        if result.exc_string:
            return parse_exception(result.exc_string)
    return None


def _cost(connection: Redis, job_id: str) -> Cost:
    raw: dict[bytes, bytes] = connection.hgetall(keys.job_cost(job_id))  # type: ignore[assignment]
    values: dict[str, Any] = {key.decode(): value.decode() for key, value in raw.items()}
    return Cost(
        tokens_in=int(values.get("tokens_in", 0)),
        tokens_out=int(values.get("tokens_out", 0)),
        usd=int(values.get("usd_micros", 0)) / 1_000_000,
        calls=int(values.get("calls", 0)),
    )
