"""Accepting work: a request becomes planned jobs, budget reservations and one Redis transaction.

The order is the contract (architecture §3): validate and plan everything, claim the idempotency
key, reserve the estimate against the budgets, then write every job in one MULTI/EXEC, then wait for
the replicas (queueing/replication.py). Anything refused before the write gives back what it took, so
a refused request leaves nothing behind; once written, the idempotency key makes a retry safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.costs import reservations
from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.queueing import backpressure, graph, idempotency, replication, writer
from feynman_jobs.queueing.catalog import CLIENTS, Audience
from feynman_jobs.queueing.planning import JobPlan, plan_job
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.queueing.wiring import JsonJob
from feynman_jobs.settings import Settings


@dataclass(frozen=True)
class Submitted:
    """The job a request resolved to, and whether this request created it."""

    job: JsonJob
    created: bool


def submit(
    connection: Redis,
    settings: Settings,
    request: EnqueueRequest,
    *,
    audiences: Collection[Audience] = CLIENTS,
    owner: str | None = None,
) -> Submitted:
    """Validate and enqueue one job (and its follow-up); nothing is written when anything is wrong.

    `audiences` and `owner` say who is asking (queueing/planning.plan_job).
    """
    graph.refuse_refs(request)
    plans = plan_job(request, settings, audiences=audiences, owner=owner)
    writer.check_dependencies(connection, plans[0].depends_on)
    held = idempotency.claim(connection, request.idempotency_key, plans[0].job_id)
    if held.existing:
        # A retry after a 503 from the wait below: the job exists, but may still not be on a replica.
        replication.confirm(connection, settings)
        return Submitted(held.existing, created=False)
    try:
        backpressure.check_room(connection, settings.max_queued, plans)
        reservations.reserve_for(connection, settings, plans)
        jobs = writer.write(connection, plans, claims=[(held, plans[0].job_id)], ttl=settings.idempotency_ttl)
    except BaseException:
        idempotency.release(connection, held)
        reservations.release_for(connection, plans)
        raise
    # Written and claimed: a 503 from here on is safe to retry with the same idempotency key.
    replication.confirm(connection, settings)
    return Submitted(jobs[0], created=True)


def submit_batch(
    connection: Redis,
    settings: Settings,
    requests: list[EnqueueRequest],
    *,
    audiences: Collection[Audience] = CLIENTS,
    owner: str | None = None,
) -> tuple[str, list[Submitted]]:
    """Validate every job first, then write them all in one transaction; returns the batch id."""
    batch_id = str(uuid.uuid4())
    ids, requests = graph.resolve(requests)
    plans: list[list[JobPlan]] = []
    errors: list[FieldError] = []
    for index, request in enumerate(requests):
        try:
            plans.append(
                plan_job(
                    request,
                    settings,
                    batch_id=batch_id,
                    pointer=f"/jobs/{index}",
                    audiences=audiences,
                    owner=owner,
                    job_id=ids[index],
                )
            )
        except InvalidRequest as exc:
            errors.extend(exc.errors)
    errors.extend(_repeated_keys(requests))
    if errors:
        raise InvalidRequest("some jobs of the batch are invalid; none was enqueued", errors)
    own = set(ids)
    writer.check_dependencies(
        connection, [dep for group in plans for dep in group[0].depends_on if dep not in own]
    )
    results: list[Submitted | None] = [None] * len(requests)
    claims: list[tuple[idempotency.Claim, str]] = []
    to_write: list[JobPlan] = []
    #: Jobs an idempotency key resolved to an existing job: their dependents wait for that job.
    renamed: dict[str, str] = {}
    try:
        for index, (request, group) in enumerate(zip(requests, plans, strict=True)):
            held = idempotency.claim(connection, request.idempotency_key, group[0].job_id)
            if held.existing:
                results[index] = Submitted(held.existing, created=False)
                renamed[group[0].job_id] = held.existing.id
                continue
            claims.append((held, group[0].job_id))
            to_write.extend(group)
    except BaseException:
        for held, _ in claims:
            idempotency.release(connection, held)
        raise
    if not to_write:  # every job was already made under its idempotency key: record the batch only
        existing = [result.job.id for result in results if result is not None]
        connection.rpush(keys.batch(batch_id), *existing)
        connection.expire(keys.batch(batch_id), max(settings.result_ttl, settings.failure_ttl))
        replication.confirm(connection, settings)
        return batch_id, [result for result in results if result is not None]
    if renamed:
        to_write = [
            replace(plan, depends_on=[renamed.get(dep, dep) for dep in plan.depends_on]) for plan in to_write
        ]
    try:
        backpressure.check_room(connection, settings.max_queued, to_write)
        reservations.reserve_for(connection, settings, to_write)
        written = {
            job.id: job
            for job in writer.write(
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
        reservations.release_for(connection, to_write)
        raise
    replication.confirm(connection, settings)
    for index, group in enumerate(plans):
        if results[index] is None:
            results[index] = Submitted(written[group[0].job_id], created=True)
    return batch_id, [result for result in results if result is not None]


def _repeated_keys(requests: list[EnqueueRequest]) -> list[FieldError]:
    """One error per job whose idempotency key an earlier job of the same batch already uses."""
    first: dict[str, int] = {}
    errors = []
    for index, request in enumerate(requests):
        key = request.idempotency_key
        if not key:
            continue
        if key in first:
            errors.append(
                FieldError(
                    f"#/jobs/{index}/idempotency_key",
                    f"the same idempotency key as #/jobs/{first[key]}: a batch cannot hold one job twice",
                )
            )
        else:
            first[key] = index
    return errors
