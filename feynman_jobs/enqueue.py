"""Turn a validated request into RQ jobs in Redis, all or nothing (the producer side of the service)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from feynman_jobs import job_events
from feynman_jobs.catalog import CATALOG, JobSpec, get_spec
from feynman_jobs.errors import FieldError, IdempotencyKeyInUse, InvalidRequest
from feynman_jobs.queues import KEY_PREFIX, JsonJob, get_queue
from feynman_jobs.schemas import EnqueueRequest, field_errors
from feynman_jobs.settings import Settings

logger = logging.getLogger(__name__)

#: How long a second request with a known idempotency key waits for the first one's job to appear.
IDEMPOTENCY_WAIT_S = 5.0
#: How long a claimed idempotency key survives a request that died before writing its job.
IDEMPOTENCY_CLAIM_S = 30
#: consolidate_memory is followed by vectorize_documents on the memory it wrote.
FOLLOW_UPS = {"consolidate_memory": "vectorize_documents"}


@dataclass(frozen=True)
class Submitted:
    """The job a request resolved to, and whether this request created it."""

    job: JsonJob
    created: bool


def memory_id_for(job_id: str, session_id: str | None) -> str:
    """The memory a consolidation writes: one per session when a session is given, else one per job."""
    if session_id:
        return "mem-s-" + hashlib.sha256(session_id.encode()).hexdigest()[:24]
    return f"mem-{job_id}"


def validate_payload(spec: JobSpec, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload checked against its type's model, as the job function's keyword arguments."""
    try:
        model = spec.payload_model.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid payload for {spec.name}", field_errors(exc, ("payload",))) from None
    return model.model_dump(mode="json", exclude_none=True)


def submit(connection: Redis, settings: Settings, request: EnqueueRequest) -> Submitted:
    """Validate and enqueue one job (and its follow-up); nothing is written when anything is wrong."""
    spec = get_spec(request.type)
    kwargs = validate_payload(spec, request.payload)
    timeout = request.timeout_s or spec.timeout_s
    if timeout > spec.max_timeout_s:
        raise InvalidRequest(
            f"timeout_s is above the limit for {spec.name}",
            [FieldError("#/timeout_s", f"must be at most {spec.max_timeout_s}")],
        )
    _check_dependencies(connection, request.depends_on or [])
    job_id = str(uuid.uuid4())
    claim = _claim_idempotency_key(connection, request.idempotency_key, job_id)
    if claim is not None:
        return Submitted(_wait_for_job(connection, claim), created=False)
    claim_key = _idempotency_key(request.idempotency_key) if request.idempotency_key else None
    try:
        job = _write(connection, settings, spec, request, kwargs, job_id, timeout, claim_key)
    except BaseException:
        if claim_key:
            with contextlib.suppress(RedisError):
                connection.delete(claim_key)
        raise
    logger.info("enqueued job type=%s id=%s queue=%s", spec.name, job.id, job.origin)
    return Submitted(job, created=True)


def _write(
    connection: Redis,
    settings: Settings,
    spec: JobSpec,
    request: EnqueueRequest,
    kwargs: dict[str, Any],
    job_id: str,
    timeout: int,
    claim_key: str | None,
) -> JsonJob:
    queue = get_queue(request.queue or spec.queue, connection)
    follow_up_type = FOLLOW_UPS.get(spec.name)
    follow_up_id = f"{job_id}-{follow_up_type}" if follow_up_type else None
    retry = spec.retry(request.max_retries)
    meta = {
        "max_retries": retry.max if retry else 0,
        "follow_up": [follow_up_id] if follow_up_id else [],
        "user": request.meta or {},
    }
    if spec.name == "consolidate_memory":
        kwargs = {**kwargs, "memory_id": memory_id_for(job_id, kwargs.get("session_id"))}
    when = _scheduled_time(request)
    # RQ WATCHes the dependencies while it decides between queued and deferred; on a race, start over.
    for _ in range(10):
        job = queue.create_job(
            spec.func,
            kwargs=kwargs,
            timeout=timeout,
            result_ttl=spec.result_ttl or settings.result_ttl,
            failure_ttl=spec.failure_ttl or settings.failure_ttl,
            depends_on=list(request.depends_on) if request.depends_on else None,
            job_id=job_id,
            meta=meta,
            retry=retry,
            status=JobStatus.SCHEDULED if when else JobStatus.QUEUED,
            on_success=job_events.ON_SUCCESS,
            on_failure=job_events.ON_FAILURE,
            on_stopped=job_events.ON_STOPPED,
        )
        with connection.pipeline() as pipe:
            try:
                if when:
                    queue.schedule_job(job, when, pipeline=pipe)
                else:
                    queue.enqueue_job(job, pipeline=pipe)
                if follow_up_type and follow_up_id:
                    _add_follow_up(connection, settings, pipe, follow_up_type, follow_up_id, job.id, kwargs)
                if claim_key:
                    # The claim becomes durable in the same transaction that writes the job.
                    pipe.set(claim_key, job_id, ex=settings.idempotency_ttl)
                pipe.execute()
            except WatchError:
                continue
        assert isinstance(job, JsonJob)
        return job
    raise RuntimeError("could not enqueue: dependencies kept changing")


def _add_follow_up(
    connection: Redis,
    settings: Settings,
    pipe: Pipeline,
    job_type: str,
    job_id: str,
    parent_id: str,
    parent_kwargs: dict[str, Any],
) -> None:
    """Write the follow-up job as deferred on `parent`, in the parent's own transaction."""
    spec = CATALOG[job_type]
    queue = get_queue(spec.queue, connection)
    retry = spec.retry()
    follow_up = queue.create_job(
        spec.func,
        kwargs={"memory_id": parent_kwargs["memory_id"]},
        timeout=spec.timeout_s,
        result_ttl=spec.result_ttl or settings.result_ttl,
        failure_ttl=spec.failure_ttl or settings.failure_ttl,
        depends_on=[parent_id],
        job_id=job_id,
        meta={"max_retries": retry.max if retry else 0, "follow_up": [], "user": {}, "parent": parent_id},
        retry=retry,
        status=JobStatus.DEFERRED,
        on_success=job_events.ON_SUCCESS,
        on_failure=job_events.ON_FAILURE,
        on_stopped=job_events.ON_STOPPED,
    )
    follow_up.register_dependency(pipeline=pipe)
    follow_up.save(pipeline=pipe)
    pipe.sadd(queue.redis_queues_keys, queue.key)


def _scheduled_time(request: EnqueueRequest) -> datetime | None:
    if request.run_at is not None:
        return request.run_at.astimezone(UTC)
    if request.delay_s:
        return datetime.now(UTC) + timedelta(seconds=request.delay_s)
    return None


def _check_dependencies(connection: Redis, job_ids: list[str]) -> None:
    if not job_ids:
        return
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.exists(JsonJob.key_for(job_id))
        found = pipe.execute()
    missing = [job_id for job_id, exists in zip(job_ids, found, strict=True) if not exists]
    if missing:
        raise InvalidRequest(
            "depends_on names jobs that do not exist",
            [FieldError(f"#/depends_on/{job_ids.index(job_id)}", f"no job {job_id!r}") for job_id in missing],
        )


def _idempotency_key(key: str) -> str:
    return KEY_PREFIX + "idem:" + hashlib.sha256(key.encode()).hexdigest()


def _claim_idempotency_key(connection: Redis, key: str | None, job_id: str) -> str | None:
    """None when this request owns the key (or has none); else the id of the job that owns it."""
    if not key:
        return None
    redis_key = _idempotency_key(key)
    if connection.set(redis_key, job_id, nx=True, ex=IDEMPOTENCY_CLAIM_S):
        return None
    owner = connection.get(redis_key)
    return owner.decode() if isinstance(owner, bytes) else job_id


def _wait_for_job(connection: Redis, job_id: str) -> JsonJob:
    """The job an earlier request with the same key is writing; it may take a moment to appear."""
    deadline = time.monotonic() + IDEMPOTENCY_WAIT_S
    while True:
        if connection.exists(JsonJob.key_for(job_id)):
            job = JsonJob.fetch(job_id, connection=connection, serializer=JSONSerializer)
            assert isinstance(job, JsonJob)
            return job
        if time.monotonic() > deadline:
            raise IdempotencyKeyInUse(
                "a request with this idempotency key is still being processed; try again"
            )
        time.sleep(0.02)
