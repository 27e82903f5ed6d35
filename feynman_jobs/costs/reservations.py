"""The life of a budget reservation, in one place: reserve at enqueue, guard each model call, release.

A job's estimate is reserved when it is accepted (so accepted work cannot overrun a budget), each
model call reserves its own estimate before it is made and gives it back once its actual cost is in
the ledger, and the job's reservation is released when the job ends, is canceled or is stopped.
The pools and their Lua live in `budget`; this module decides when to use them (architecture §6).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from redis import Redis
from redis.exceptions import RedisError

from feynman_jobs.costs import budget, ledger
from feynman_jobs.costs.estimate import estimate_plan
from feynman_jobs.costs.ratelimit import ProviderLimiter
from feynman_jobs.errors import BudgetExceeded, HoldJob
from feynman_jobs.queueing.planning import JobPlan
from feynman_jobs.settings import Settings

#: Where a job's meta remembers what it reserved, so its end gives it back without a lookup.
RESERVED_META = "reserved"


def reserve_for(connection: Redis, settings: Settings, plans: list[JobPlan]) -> None:
    """Hold each planned job's estimate against the budgets, or raise BudgetExceeded holding nothing."""
    if not budget.configured(settings):
        return
    for index, plan in enumerate(plans):
        cost = estimate_plan(plan, settings).usd_micros
        if cost <= 0:
            continue
        try:
            budget.reserve(connection, settings, plan.job_id, cost)
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
) -> Iterator[None]:
    """Guard one model call: budgets (against its estimate) and, for a remote provider, rate limits.

    Raises HoldJob when the call may not happen now. Record the actual usage inside the block, so
    the estimate is given back only once the real spend counts.
    """
    cost = ledger.cost_usd_micros(settings.prices, model, tokens_in, tokens_out)
    member = f"{job_id}:{uuid.uuid4().hex[:12]}"
    if cost > 0:
        try:
            budget.reserve(connection, settings, member, cost, pool=budget.INFLIGHT)
        except BudgetExceeded as exc:
            raise HoldJob(str(exc), exc.retry_after_s or budget.TOTAL_RECHECK_S) from None
    try:
        if remote:
            ProviderLimiter(connection, settings).acquire(tokens_in + tokens_out)
        yield
    finally:
        if cost > 0:
            budget.release(connection, member, pool=budget.INFLIGHT)
