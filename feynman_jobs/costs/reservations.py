"""The life of a budget reservation, in one place: reserve at enqueue, guard each model call, release,
and reconcile what nobody released.

A job's estimate is reserved when it is accepted (so accepted work cannot overrun a budget), each
model call reserves its own estimate before it is made and gives it back once its actual cost is in
the ledger, and the job's reservation is released when the job ends, is canceled or is stopped.
Every reservation has a deadline (the job's timeout plus a margin) on the Redis server's clock:
`reconcile`, run by the scheduler, moves the deadline of the ones whose job is still waiting or
running and gives back the rest — jobs that ended, were deleted, or whose work horse was killed
before its `finally` ran. The pools and their Lua live in `budget` (architecture §6).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from redis import Redis
from redis.exceptions import RedisError

from feynman_jobs import keys, redisio
from feynman_jobs.costs import budget, ledger
from feynman_jobs.costs.estimate import estimate_plan
from feynman_jobs.costs.ratelimit import MAX_WAIT_S, ProviderLimiter
from feynman_jobs.errors import BudgetExceeded, HoldJob, ProviderRateLimited
from feynman_jobs.providers.chat import CallGuard, CallKind, UsageRecorder
from feynman_jobs.queueing.planning import JobPlan
from feynman_jobs.settings import Settings

logger = logging.getLogger(__name__)

#: Where a job's meta remembers what it reserved, so its end gives it back without a lookup.
RESERVED_META = "reserved"
#: Added to a job's timeout to make a reservation's deadline. Longer than the reconcile period, so a
#: waiting job's reservation is always renewed before it lapses.
MARGIN_S = 120
#: The timeout assumed for a job whose hash does not say (RQ's default).
DEFAULT_TIMEOUT_S = 180
#: How long a model call made while answering a request waits for a rate limit before a 429.
REQUEST_MAX_WAIT_S = 2.0
#: Statuses after which a job spends nothing more.
ENDED = {"finished", "failed", "stopped", "canceled"}


def reserve_for(connection: Redis, settings: Settings, plans: list[JobPlan]) -> None:
    """Hold each planned job's estimate against the budgets, or raise BudgetExceeded holding nothing."""
    if not budget.configured(connection, settings):
        return
    for index, plan in enumerate(plans):
        cost = estimate_plan(plan, settings).usd_micros
        if cost <= 0:
            continue
        try:
            budget.reserve(connection, settings, plan.job_id, cost, ttl_s=plan.timeout + MARGIN_S)
        except BudgetExceeded:
            release_for(connection, plans[:index])
            raise
        plan.meta[RESERVED_META] = cost


def release_for(connection: Redis, plans: list[JobPlan]) -> None:
    """Give back what these planned jobs reserved (after a refused or failed write)."""
    with contextlib.suppress(RedisError):
        for plan in plans:
            if plan.meta.get(RESERVED_META):
                budget.release(connection, plan.job_id)


def release_job(connection: Redis, job_id: str) -> int:
    """Give back a job's reservation when it ends, is canceled or stopped (idempotent)."""
    return budget.release(connection, job_id)


def call_member(job_id: str, execution_id: str) -> str:
    """The in-flight pool member of one model call: `job:execution:nonce` (the execution may be '')."""
    return f"{job_id}:{execution_id}:{uuid.uuid4().hex[:12]}"


@contextmanager
def guard_call(
    connection: Redis,
    settings: Settings,
    job_id: str,
    *,
    model: str,
    tokens_in: int,
    tokens_out: int,
    remote: bool,
    kind: CallKind = "chat",
    execution_id: str = "",
    ttl_s: int = DEFAULT_TIMEOUT_S + MARGIN_S,
    in_request: bool = False,
) -> Iterator[None]:
    """Guard one model call: budgets (against its estimate) and, for a remote provider, the rate
    limits of its `kind`.

    Raises HoldJob when the call may not happen now. Record the actual usage inside the block, so
    the estimate is given back only once the real spend counts. The reservation lapses after `ttl_s`
    even if this process dies inside the block; `reconcile` gives it back sooner once the execution
    it belongs to has ended. A call made while answering a request (`in_request`, a search's query
    embedding) raises BudgetExceeded as it is and waits at most REQUEST_MAX_WAIT_S for a rate limit.
    """
    cost = ledger.cost_usd_micros(settings.prices, model, tokens_in, tokens_out)
    member = call_member(job_id, execution_id)
    if cost > 0:
        try:
            budget.reserve(connection, settings, member, cost, ttl_s=ttl_s, pool=budget.INFLIGHT)
        except BudgetExceeded as exc:
            if in_request:
                raise
            raise HoldJob(str(exc), exc.retry_after_s or budget.TOTAL_RECHECK_S) from None
    try:
        limiter = ProviderLimiter(connection, settings, kind) if remote else None
        if limiter is not None:
            wait = REQUEST_MAX_WAIT_S if in_request else MAX_WAIT_S
            limiter.acquire(tokens_in + tokens_out, max_wait_s=wait)
        try:
            yield
        except ProviderRateLimited as exc:
            if limiter is not None:  # the provider's 429 holds every worker, not just this call
                limiter.provider_said_wait(exc.retry_after_s)
            raise
    finally:
        if cost > 0:
            budget.release(connection, member, pool=budget.INFLIGHT)


def request_meter(connection: Redis, settings: Settings, label: str) -> tuple[CallGuard, UsageRecorder]:
    """The guard and recorder of model calls made while answering a request, outside any job.

    Their ledger entries carry job type `label` and no job id; a budget refusal is BudgetExceeded
    and a rate limit met for over REQUEST_MAX_WAIT_S is HoldJob, both 429 problems at the web edge.
    """

    def guard(
        model: str, tokens_in: int, tokens_out: int, *, remote: bool, kind: CallKind = "chat"
    ) -> AbstractContextManager[None]:
        return guard_call(
            connection,
            settings,
            label,
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            remote=remote,
            kind=kind,
            ttl_s=MARGIN_S,
            in_request=True,
        )

    def record(model: str, tokens_in: int, tokens_out: int) -> None:
        usd = ledger.cost_usd_micros(settings.prices, model, tokens_in, tokens_out)
        ledger.record_call(
            connection,
            model=model,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            usd_micros=usd,
            job_id="",
            job_type=label,
            zone=settings.zone,
        )

    return guard, record


def reconcile(connection: Redis) -> dict[str, int]:
    """Give back reservations nobody needs any more; renew the deadline of the others.

    A job's reservation is needed while the job exists and has not ended; a call's while the execution
    it was made in is alive (RQ deletes an execution when it ends; its key expires when its worker
    stops heartbeating).
    """
    released = renewed = 0
    jobs = budget.members(connection)
    with connection.pipeline(transaction=False) as pipe:
        for job_id in jobs:
            pipe.hmget(keys.rq_job(job_id), ["status", "timeout"])
        fields = pipe.execute()
    by_ttl: dict[int, list[str]] = {}
    for job_id, (status, timeout) in zip(jobs, fields, strict=True):
        if status is None or redisio.text(status) in ENDED:
            released += bool(budget.release(connection, job_id))
            continue
        ttl = (int(timeout) if timeout and int(timeout) > 0 else DEFAULT_TIMEOUT_S) + MARGIN_S
        by_ttl.setdefault(ttl, []).append(job_id)
    for ttl, held in by_ttl.items():
        renewed += budget.extend(connection, ttl, held)
    calls = budget.members(connection, budget.INFLIGHT)
    with connection.pipeline(transaction=False) as pipe:
        for member in calls:
            job_id, _, rest = member.partition(":")
            execution_id = rest.rpartition(":")[0]
            if execution_id:
                pipe.exists(keys.rq_execution(job_id, execution_id))
            else:  # made outside a worker's execution: needed while its job runs
                pipe.hget(keys.rq_job(job_id), "status")
        alive = pipe.execute()
    for member, live in zip(calls, alive, strict=True):
        if live not in (1, b"started"):
            released += bool(budget.release(connection, member, pool=budget.INFLIGHT))
    if released:
        logger.info("gave back %d budget reservations nobody needed; renewed %d", released, renewed)
    return {"released": released, "renewed": renewed}
