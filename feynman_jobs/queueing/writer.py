"""Write planned jobs to Redis in one transaction: all of a request (or a batch) or nothing."""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import RedisError, WatchError
from rq.job import Dependency, JobStatus

from feynman_jobs.costs import budget
from feynman_jobs.costs.estimate import estimate_plan
from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.lifecycle import outcomes
from feynman_jobs.queueing import idempotency
from feynman_jobs.queueing.catalog import type_of
from feynman_jobs.queueing.planning import JobPlan, plan_job
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.queueing.wiring import KEY_PREFIX, JsonJob, get_queue
from feynman_jobs.settings import Settings

logger = logging.getLogger(__name__)

#: Every job enqueued here, scored by a counter: newest first, stable pages under concurrent writes.
INDEX_KEY = KEY_PREFIX + "jobs:index"
SEQUENCE_KEY = KEY_PREFIX + "jobs:seq"
MAX_WATCH_RETRIES = 20


def index_key(kind: str, value: str) -> str:
    """A job index by `kind` (only "type" today); the queue filter reads the job's origin instead."""
    return f"{KEY_PREFIX}jobs:{kind}:{value}"


def batch_key(batch_id: str) -> str:
    """The list of a batch's job ids."""
    return f"{KEY_PREFIX}batch:{batch_id}"


@dataclass(frozen=True)
class Submitted:
    """The job a request resolved to, and whether this request created it."""

    job: JsonJob
    created: bool


def submit(connection: Redis, settings: Settings, request: EnqueueRequest) -> Submitted:
    """Validate and enqueue one job (and its follow-up); nothing is written when anything is wrong."""
    plans = plan_job(request, settings)
    check_dependencies(connection, plans[0].depends_on)
    held = idempotency.claim(connection, request.idempotency_key, plans[0].job_id)
    if held.existing:
        return Submitted(idempotency.wait_for_job(connection, held.existing), created=False)
    try:
        reserve_budget(connection, settings, plans)
        jobs = write(connection, plans, claims=[(held, plans[0].job_id)], ttl=settings.idempotency_ttl)
    except BaseException:
        idempotency.release(connection, held)
        release_budget(connection, plans)
        raise
    return Submitted(jobs[0], created=True)


def reserve_budget(connection: Redis, settings: Settings, plans: list[JobPlan]) -> None:
    """Hold each job's estimated cost against the budgets, or raise BudgetExceeded holding nothing."""
    if not budget.configured(settings):
        return
    for index, plan in enumerate(plans):
        cost = estimate_plan(plan, settings).usd_micros
        if cost <= 0:
            continue
        try:
            budget.reserve(connection, settings, plan.job_id, cost)
        except budget.BudgetExceeded:
            release_budget(connection, plans[:index])
            raise
        plan.meta["reserved"] = cost  # so the job's end gives it back without a lookup


def release_budget(connection: Redis, plans: list[JobPlan]) -> None:
    """Give back what these jobs reserved (nothing, if they reserved nothing)."""
    with contextlib.suppress(RedisError):
        for plan in plans:
            if plan.meta.get("reserved"):
                budget.release(connection, plan.job_id)


def submit_batch(
    connection: Redis, settings: Settings, requests: list[EnqueueRequest]
) -> tuple[str, list[Submitted]]:
    """Validate every job first, then write them all in one transaction; returns the batch id."""
    batch_id = str(uuid.uuid4())
    plans: list[list[JobPlan]] = []
    errors: list[FieldError] = []
    for index, request in enumerate(requests):
        try:
            plans.append(plan_job(request, settings, batch_id=batch_id, pointer=f"/jobs/{index}"))
        except InvalidRequest as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidRequest("some jobs of the batch are invalid; none was enqueued", errors)
    check_dependencies(connection, [dep for group in plans for dep in group[0].depends_on])
    results: list[Submitted | None] = [None] * len(requests)
    claims: list[tuple[idempotency.Claim, str]] = []
    to_write: list[JobPlan] = []
    for index, (request, group) in enumerate(zip(requests, plans, strict=True)):
        held = idempotency.claim(connection, request.idempotency_key, group[0].job_id)
        if held.existing:
            results[index] = Submitted(idempotency.wait_for_job(connection, held.existing), created=False)
            continue
        claims.append((held, group[0].job_id))
        to_write.extend(group)
    if not to_write:  # every job was already made under its idempotency key: record the batch only
        existing = [result.job.id for result in results if result is not None]
        connection.rpush(batch_key(batch_id), *existing)
        connection.expire(batch_key(batch_id), max(settings.result_ttl, settings.failure_ttl))
        return batch_id, [result for result in results if result is not None]
    try:
        reserve_budget(connection, settings, to_write)
        written = {
            job.id: job
            for job in write(
                connection,
                to_write,
                claims=claims,
                ttl=settings.idempotency_ttl,
                batch=(batch_id, max(settings.result_ttl, settings.failure_ttl)),
            )
        }
    except BaseException:
        for held, _ in claims:
            idempotency.release(connection, held)
        release_budget(connection, to_write)
        raise
    for index, group in enumerate(plans):
        if results[index] is None:
            results[index] = Submitted(written[group[0].job_id], created=True)
    return batch_id, [result for result in results if result is not None]


def check_dependencies(connection: Redis, job_ids: list[str]) -> None:
    """InvalidRequest naming every dependency that is not a job."""
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


def write(
    connection: Redis,
    plans: list[JobPlan],
    *,
    claims: list[tuple[idempotency.Claim, str]],
    ttl: int,
    batch: tuple[str, int] | None = None,
) -> list[JsonJob]:
    """Create every planned job in one MULTI/EXEC, WATCHing outside dependencies so none is missed."""
    last = int(connection.incrby(SEQUENCE_KEY, max(1, len(plans))))
    own = {plan.job_id for plan in plans}
    outside = sorted({dep for plan in plans for dep in plan.depends_on if dep not in own})
    with connection.pipeline() as pipe:
        for _ in range(MAX_WATCH_RETRIES):
            try:
                statuses: dict[str, str | None] = {}
                if outside:
                    # A dependency that finishes while we write changes its hash: EXEC then fails, we retry.
                    pipe.watch(*[JsonJob.key_for(dep) for dep in outside])
                    for dep in outside:
                        raw = pipe.hget(JsonJob.key_for(dep), "status")
                        statuses[dep] = raw.decode() if isinstance(raw, bytes) else None
                pipe.multi()
                jobs = [_add_job(connection, pipe, plan, statuses, own) for plan in plans]
                first = last - len(plans) + 1
                for offset, job in enumerate(jobs):
                    plan = plans[offset]
                    for key in (INDEX_KEY, index_key("type", plan.spec.name)):
                        pipe.zadd(key, {job.id: first + offset})
                for held, job_id in claims:
                    idempotency.confirm(pipe, held, job_id, ttl)
                if batch:
                    pipe.rpush(batch_key(batch[0]), *[job.id for job in jobs])
                    pipe.expire(batch_key(batch[0]), batch[1])
                pipe.execute()
            except WatchError:
                continue
            for job in jobs:
                status = job.get_status(refresh=False).value
                logger.info(
                    "enqueued job type=%s id=%s queue=%s status=%s",
                    type_of(job.func_name),
                    job.id,
                    job.origin,
                    status,
                )
            return jobs
    raise RuntimeError("could not enqueue: the dependencies kept changing")


def _add_job(
    connection: Redis, pipe: Pipeline, plan: JobPlan, statuses: dict[str, str | None], own: set[str]
) -> JsonJob:
    queue = get_queue(plan.queue, connection)
    met = {JobStatus.FINISHED.value} | ({JobStatus.FAILED.value} if plan.allow_failure else set())
    waiting = any(dep in own or statuses.get(dep) not in met for dep in plan.depends_on)
    status = JobStatus.SCHEDULED if plan.when else JobStatus.DEFERRED if waiting else JobStatus.QUEUED
    job = queue.create_job(
        plan.spec.func,
        kwargs=plan.kwargs,
        timeout=plan.timeout,
        result_ttl=plan.result_ttl,
        failure_ttl=plan.failure_ttl,
        depends_on=Dependency(jobs=plan.depends_on, allow_failure=plan.allow_failure)
        if plan.depends_on
        else None,
        job_id=plan.job_id,
        meta=plan.meta,
        retry=plan.retry,
        status=status,
        on_success=outcomes.ON_SUCCESS,
        on_failure=outcomes.ON_FAILURE,
        on_stopped=outcomes.ON_STOPPED,
    )
    if plan.when:
        queue.schedule_job(job, plan.when, pipeline=pipe)
    elif waiting:
        job.origin = queue.name
        job.register_dependency(pipeline=pipe)
        job.save(pipeline=pipe)
        pipe.sadd(queue.redis_queues_keys, queue.key)
    else:
        # RQ's public enqueue_job would WATCH again inside our MULTI; the decision is already made.
        queue._enqueue_job(job, pipeline=pipe)
    assert isinstance(job, JsonJob)
    return job
