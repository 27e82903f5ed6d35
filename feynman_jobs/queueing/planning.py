"""From a validated request to the exact RQ jobs to write: ids, queue, timeout, retry, follow-ups."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from rq import Retry

from feynman_jobs.errors import FieldError, InvalidRequest, field_errors
from feynman_jobs.queueing.catalog import CATALOG, CLIENTS, Audience, JobSpec, get_spec
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.queueing.webhooks import webhook_meta
from feynman_jobs.settings import Settings

#: consolidate_memory is followed by vectorize_documents on the memory it wrote.
FOLLOW_UPS = {"consolidate_memory": "vectorize_documents"}


@dataclass(frozen=True)
class JobPlan:
    """One RQ job to create, fully decided before anything is written."""

    job_id: str
    spec: JobSpec
    queue: str
    kwargs: dict[str, Any]
    timeout: int
    result_ttl: int
    failure_ttl: int
    retry: Retry | None
    meta: dict[str, Any]
    depends_on: list[str] = field(default_factory=list)
    allow_failure: bool = False
    when: datetime | None = None


def memory_id_for(job_id: str, learner_id: str, session_id: str | None) -> str:
    """The memory a consolidation writes: one per learner and session when a session is given, else one
    per job. Two learners in one session keep a memory each."""
    if session_id:
        both = json.dumps([learner_id, session_id], ensure_ascii=False)
        return "mem-s-" + hashlib.sha256(both.encode()).hexdigest()[:24]
    return f"mem-{job_id}"


def validate_payload(spec: JobSpec, payload: object, pointer: str = "payload") -> dict[str, Any]:
    """The payload checked against its type's model, as the job function's keyword arguments.

    A payload that is already an instance of that model (a batch's jobs are validated in one pass,
    requests.parse_batch_request) is not validated again.
    """
    if type(payload) is spec.payload_model:
        return payload.model_dump(mode="json", exclude_none=True)
    try:
        model = spec.payload_model.model_validate(payload)
    except ValidationError as exc:
        prefix = tuple(part for part in pointer.split("/") if part)
        raise InvalidRequest(f"invalid payload for {spec.name}", field_errors(exc, prefix)) from None
    return model.model_dump(mode="json", exclude_none=True)


def plan_job(
    request: EnqueueRequest,
    settings: Settings,
    *,
    batch_id: str | None = None,
    pointer: str = "",
    audiences: Collection[Audience] = CLIENTS,
    owner: str | None = None,
    job_id: str | None = None,
) -> list[JobPlan]:
    """The job a request asks for, followed by its follow-up job if its type has one.

    `pointer` locates the request inside a larger body (a batch) in error messages; `audiences` are the
    job types the caller may enqueue (catalog.get_spec); `owner` is the fingerprint of the credential
    that enqueued it, kept in the job's meta (whoever holds it may cancel and requeue the job); `job_id`
    is given when other jobs of a batch already refer to it (queueing/graph.py), else a new UUID.
    """
    try:
        spec = get_spec(request.type, audiences)
    except InvalidRequest as exc:
        raise type(exc)(exc.detail, [FieldError(f"#{pointer}/type", e.detail) for e in exc.errors]) from None
    kwargs = validate_payload(spec, request.payload, f"{pointer}/payload")
    timeout = request.timeout_s or spec.timeout_s
    if timeout > spec.max_timeout_s:
        raise InvalidRequest(
            f"timeout_s is above the limit for {spec.name}",
            [FieldError(f"#{pointer}/timeout_s", f"must be at most {spec.max_timeout_s}")],
        )
    job_id = job_id or str(uuid.uuid4())
    retry = spec.retry(request.max_retries)
    follow_up_type = FOLLOW_UPS.get(spec.name)
    follow_up_id = f"{job_id}-{follow_up_type}" if follow_up_type else None
    if spec.name == "consolidate_memory":
        kwargs["memory_id"] = memory_id_for(job_id, kwargs["learner_id"], kwargs.get("session_id"))
    owned = {"owner": owner} if owner else {}
    hooked = {"webhook": webhook_meta(request.webhook, settings, pointer)} if request.webhook else {}
    main = JobPlan(
        job_id=job_id,
        spec=spec,
        queue=request.queue or spec.queue,
        kwargs=kwargs,
        timeout=timeout,
        result_ttl=spec.result_ttl or settings.result_ttl,
        failure_ttl=spec.failure_ttl or settings.failure_ttl,
        retry=retry,
        meta={
            "max_retries": retry.max if retry else 0,
            "follow_up": [follow_up_id] if follow_up_id else [],
            "user": request.meta or {},
            "batch_id": batch_id,
            **({"ref": request.ref} if request.ref else {}),
            **owned,
            **hooked,
        },
        depends_on=list(request.depends_on or []),
        allow_failure=request.allow_failed_dependencies,
        when=_scheduled_time(request),
    )
    if not (follow_up_type and follow_up_id):
        return [main]
    follow_spec = CATALOG[follow_up_type]
    follow_retry = follow_spec.retry()
    follow_up = JobPlan(
        job_id=follow_up_id,
        spec=follow_spec,
        queue=follow_spec.queue,
        kwargs={"memory_id": kwargs["memory_id"], "learner_id": kwargs["learner_id"]},
        timeout=follow_spec.timeout_s,
        result_ttl=follow_spec.result_ttl or settings.result_ttl,
        failure_ttl=follow_spec.failure_ttl or settings.failure_ttl,
        retry=follow_retry,
        meta={
            "max_retries": follow_retry.max if follow_retry else 0,
            "follow_up": [],
            "user": {},
            "batch_id": batch_id,
            "parent": job_id,
            **owned,
        },
        depends_on=[job_id],
    )
    return [main, follow_up]


def _scheduled_time(request: EnqueueRequest) -> datetime | None:
    if request.run_at is not None:
        when = request.run_at.astimezone(UTC)
    elif request.delay_s:
        when = datetime.now(UTC) + timedelta(seconds=request.delay_s)
    else:
        return None
    # RQ's ScheduledJobRegistry keeps whole seconds and truncates: without rounding up, a job could
    # start up to a second before the time asked for.
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when
