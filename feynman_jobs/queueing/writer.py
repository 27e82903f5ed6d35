"""Write planned jobs to Redis in one transaction: all of a request (or a batch) or nothing."""

from __future__ import annotations

import logging

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq.job import Dependency, JobStatus

from feynman_jobs import keys
from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.queueing import bulk, idempotency
from feynman_jobs.queueing.catalog import CALLBACKS, type_of
from feynman_jobs.queueing.planning import JobPlan
from feynman_jobs.queueing.wiring import JsonJob, JsonQueue, get_queue

logger = logging.getLogger(__name__)

MAX_WATCH_RETRIES = 20


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
    last = int(connection.incrby(keys.JOBS_SEQUENCE, max(1, len(plans))))
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
                # Each idempotency key must still hold this request's claim when the job is written.
                for held, _ in claims:
                    idempotency.watch(pipe, held)
                pipe.multi()
                queues = {name: get_queue(name, connection) for name in {plan.queue for plan in plans}}
                queued = bulk.BulkWriter(pipe)
                jobs = [_add_job(queues[plan.queue], pipe, plan, statuses, own, queued) for plan in plans]
                queued.flush()
                # What RQ's enqueue_many and schedule_job do on every path (its _enqueue_job does not):
                # RQ lists queues from this set (`rq info`, Queue.all(), the dashboard).
                pipe.sadd(keys.RQ_QUEUES, *sorted(queue.key for queue in queues.values()))
                # One ZADD per index, whatever the number of jobs: a batch pays per index, not per job.
                first = last - len(plans) + 1
                scores: dict[str, dict[str, int]] = {keys.JOBS_INDEX: {}}
                for offset, (plan, job) in enumerate(zip(plans, jobs, strict=True)):
                    scores[keys.JOBS_INDEX][job.id] = first + offset
                    scores.setdefault(keys.jobs_by_type(plan.spec.name), {})[job.id] = first + offset
                for key, members in scores.items():
                    pipe.zadd(key, members)
                for held, job_id in claims:
                    idempotency.confirm(pipe, held, job_id, ttl)
                if batch:
                    pipe.rpush(keys.batch(batch[0]), *[job.id for job in jobs])
                    pipe.expire(keys.batch(batch[0]), batch[1])
                pipe.execute()
            except WatchError:
                continue
            _log_enqueued(jobs)
            return jobs
    raise RuntimeError("could not enqueue: the dependencies kept changing")


def _log_enqueued(jobs: list[JsonJob]) -> None:
    """One line per job; a batch's jobs of one type, queue and status share a line that lists their ids
    (a batch of 200 writes one line, not 200, and every id can still be found in the log)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for job in jobs:
        status = job.get_status(refresh=False).value
        groups.setdefault((type_of(job.func_name), job.origin, status), []).append(job.id)
    for (job_type, queue, status), ids in groups.items():
        if len(ids) == 1:
            logger.info("enqueued job type=%s id=%s queue=%s status=%s", job_type, ids[0], queue, status)
        else:
            logger.info(
                "enqueued %d jobs type=%s queue=%s status=%s ids=%s", len(ids), job_type, queue, status,
                ",".join(ids),
            )  # fmt: skip


def _add_job(
    queue: JsonQueue,
    pipe: Pipeline,
    plan: JobPlan,
    statuses: dict[str, str | None],
    own: set[str],
    queued: bulk.BulkWriter,
) -> JsonJob:
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
        # Type and ids only: RQ's default description holds the arguments (a learner's words), and RQ
        # logs it for every job it runs (architecture §9).
        description=plan.spec.describe(plan.kwargs),
        meta=plan.meta,
        retry=plan.retry,
        status=status,
        on_success=CALLBACKS.on_success,
        on_failure=CALLBACKS.on_failure,
        on_stopped=CALLBACKS.on_stopped,
    )
    if plan.when:
        queue.schedule_job(job, plan.when, pipeline=pipe)
    elif waiting:
        job.origin = queue.name
        # rq-compat(rq==3.0.0): what Queue.enqueue_job does for a deferred job, inside our transaction.
        job.register_dependency(pipeline=pipe)
        job.save(pipeline=pipe)
    else:
        # rq-compat(rq==3.0.0): the private _enqueue_job, because the public enqueue_job would WATCH
        # again inside our MULTI; the decision is already made. Remove if RQ grows a pipeline-only enqueue.
        # Its writes are recorded, and written with the batch's other queued jobs (queueing/bulk.py).
        recorder = bulk.Recorder()
        queue._enqueue_job(job, pipeline=recorder.as_pipeline())
        queued.add(recorder)
    assert isinstance(job, JsonJob)
    return job
