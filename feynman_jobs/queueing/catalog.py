"""The job catalog: every job type with its function, queue, timeout, retry policy and callbacks."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from rq import Retry
from rq.callbacks import Callback

from feynman_jobs.errors import FieldError, Forbidden, UnknownJobType
from feynman_jobs.queueing import payloads

#: Upper bound a caller may ask for, whatever the type.
MAX_RETRIES_CAP = 10
#: Longest wait between two attempts, however many retries.
MAX_BACKOFF_S = 600
#: The module whose on_success / on_failure / on_stopped every job calls back. RQ stores these
#: dotted paths in each job hash, so a move needs an import shim (see feynman_jobs/job_events.py).
OUTCOME_CALLBACKS = "feynman_jobs.lifecycle.outcomes"


class Callbacks(NamedTuple):
    """RQ's on_success, on_failure and on_stopped: every attempt's outcome is recorded."""

    on_success: Callback
    on_failure: Callback
    on_stopped: Callback


#: The callbacks every job of the service carries, whoever enqueues it (API, CLI, scheduler).
CALLBACKS = Callbacks(*(Callback(f"{OUTCOME_CALLBACKS}.{name}") for name in Callbacks._fields))

#: Who may enqueue a job type: any client; an operator (on demand, e.g. a cost rollup); or only the
#: service itself — the scheduler, the CLI and the API's own routes (maintenance, deletions).
Audience = Literal["client", "operator", "internal"]
#: What an API client holds, what an operator holds, and what the scheduler and the CLI hold.
CLIENTS: frozenset[Audience] = frozenset({"client"})
OPERATORS: frozenset[Audience] = frozenset({"client", "operator"})
EVERYONE: frozenset[Audience] = frozenset({"client", "operator", "internal"})
#: Payload fields a job's RQ description may show: ids and settings, never a learner's words. RQ logs
#: the description of every job it runs, and rq-dashboard shows it (architecture §9).
DESCRIBED_FIELDS = (
    "learner_id",
    "session_id",
    "memory_id",
    "namespace",
    "granularity",
    "job_id",
    "delivery_id",
    "event",
)


@dataclass(frozen=True)
class JobSpec:
    """How one job type runs: RQ reads these at enqueue time."""

    name: str
    func: str
    queue: str
    timeout_s: int
    max_timeout_s: int
    max_retries: int
    backoff_base_s: int
    payload_model: type[payloads.Payload]
    #: Who may enqueue it (API, batch, estimate): internal types only the scheduler and the CLI.
    audience: Audience = "client"
    #: None means the service-wide FEYNMAN_RESULT_TTL / FEYNMAN_FAILURE_TTL.
    result_ttl: int | None = None
    failure_ttl: int | None = None

    def retry(self, max_retries: int | None = None) -> Retry | None:
        """RQ's Retry with exponential backoff: base, 2×base, 4×base … capped at MAX_BACKOFF_S."""
        count = self.max_retries if max_retries is None else max_retries
        if count <= 0:
            return None
        intervals = [min(self.backoff_base_s * 2**attempt, MAX_BACKOFF_S) for attempt in range(count)]
        return Retry(max=count, interval=intervals)

    def describe(self, kwargs: Mapping[str, Any]) -> str:
        """The job's RQ description: its type and ids, e.g. `consolidate_memory(learner_id='l-1')`."""
        shown = ", ".join(f"{name}={kwargs[name]!r}" for name in DESCRIBED_FIELDS if name in kwargs)
        return f"{self.name}({shown})"


def _spec(type_: str, module: str, **policy: object) -> JobSpec:
    return JobSpec(name=type_, func=f"feynman_jobs.jobs.{module}.{type_}", **policy)  # type: ignore[arg-type]


CATALOG: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "analyze_conversation",
            "analyze",
            queue="high",
            timeout_s=120,
            max_timeout_s=900,
            max_retries=3,
            backoff_base_s=5,
            payload_model=payloads.AnalyzeConversation,
        ),
        _spec(
            "consolidate_memory",
            "consolidate",
            queue="default",
            timeout_s=300,
            max_timeout_s=1800,
            max_retries=3,
            backoff_base_s=5,
            payload_model=payloads.ConsolidateMemory,
        ),
        _spec(
            "vectorize_documents",
            "vectorize",
            queue="default",
            timeout_s=600,
            max_timeout_s=3600,
            max_retries=3,
            backoff_base_s=2,
            payload_model=payloads.VectorizeDocuments,
        ),
        _spec(
            "rollup_costs",
            "rollup",
            queue="low",
            timeout_s=300,
            max_timeout_s=1800,
            max_retries=2,
            backoff_base_s=30,
            payload_model=payloads.RollupCosts,
            audience="operator",
            result_ttl=24 * 3600,
        ),
        _spec(
            "reap_abandoned_jobs",
            "maintenance",
            queue="low",
            timeout_s=60,
            max_timeout_s=300,
            max_retries=0,
            backoff_base_s=1,
            payload_model=payloads.ReapAbandonedJobs,
            audience="internal",
            result_ttl=3600,
        ),
        _spec(
            "clean_registries",
            "maintenance",
            queue="low",
            timeout_s=300,
            max_timeout_s=1800,
            max_retries=0,
            backoff_base_s=1,
            payload_model=payloads.CleanRegistries,
            audience="internal",
            result_ttl=3600,
        ),
        _spec(
            "delete_learner_memories",
            "forget",
            queue="default",
            timeout_s=300,
            max_timeout_s=1800,
            max_retries=3,
            backoff_base_s=5,
            payload_model=payloads.DeleteLearnerMemories,
            audience="internal",
        ),
        # At least once, until a 2xx: 1, 2, 4 … 512 s apart (about 17 minutes in all).
        _spec(
            "deliver_webhook",
            "webhooks",
            queue="high",
            timeout_s=30,
            max_timeout_s=60,
            max_retries=10,
            backoff_base_s=1,
            payload_model=payloads.DeliverWebhook,
            audience="internal",
        ),
    )
}


def public_types() -> list[str]:
    """The types a caller may name in a request (client and operator types), sorted."""
    return sorted(name for name, spec in CATALOG.items() if spec.audience != "internal")


def get_spec(job_type: str, audiences: Collection[Audience] = EVERYONE) -> JobSpec:
    """The spec of a job type the caller may enqueue.

    UnknownJobType (naming the public types) for a type that is not in the catalog or is internal
    to a caller without "internal"; Forbidden for an operator type asked for by a client.
    """
    spec = CATALOG.get(job_type)
    if spec is None or (spec.audience not in audiences and spec.audience == "internal"):
        known = ", ".join(public_types())
        what = "internal (the scheduler and the CLI run it)" if spec else "unknown"
        raise UnknownJobType(
            f"job type {job_type!r} is {what}",
            [FieldError("#/type", f"must be one of: {known}")],
        )
    if spec.audience not in audiences:
        raise Forbidden(f"{job_type} on demand needs an operator credential (FEYNMAN_ADMIN_TOKENS)")
    return spec


def type_of(func_name: str | None) -> str:
    """The job type of an RQ job: its function's name (verb_noun), so nothing needs mapping."""
    return (func_name or "").rsplit(".", 1)[-1]
