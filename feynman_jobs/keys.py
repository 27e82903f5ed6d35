"""Every Redis key the service writes, and the RQ keys it reads: the one place a key string is built.

Our keys share the prefix `feynman:`; RQ's own keys start with `rq:` and belong to RQ. The map with
each key's owner, type and lifetime is in docs/architecture.md §4.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from rq.defaults import RQ_KEY_PREFIX
from rq.job import Job
from rq.queue import Queue
from rq.registry import (
    BaseRegistry,
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ReadyJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.worker import Worker

#: Every key feynman_jobs owns (besides RQ's own `rq:` keys) starts with this.
PREFIX = "feynman:"

# -- jobs: the index the listing reads, batches, idempotency keys -------------------------------

#: Every job enqueued through the service, scored by a counter: newest first, stable pages.
JOBS_INDEX = PREFIX + "jobs:index"
#: The counter those scores come from.
JOBS_SEQUENCE = PREFIX + "jobs:seq"
#: Bumped before each WAIT: a write on the waiting connection, after the enqueue it must cover.
REPLICATION_FENCE = PREFIX + "replication:fence"


def jobs_by_type(job_type: str) -> str:
    """The index of one job type's jobs (same scores as JOBS_INDEX)."""
    return f"{PREFIX}jobs:type:{job_type}"


#: SCAN pattern of every per-type index.
JOBS_BY_TYPE_PATTERN = jobs_by_type("*")


def batch(batch_id: str) -> str:
    """The list of a batch's job ids, in creation order."""
    return f"{PREFIX}batch:{batch_id}"


def idempotency(key: str) -> str:
    """Where an idempotency key's job id is kept (hashed: keys are caller-chosen text)."""
    return PREFIX + "idem:" + hashlib.sha256(key.encode()).hexdigest()


def job_events(job_id: str) -> str:
    """The list of a job's timeline entries (JSON, oldest first)."""
    return f"{PREFIX}events:{job_id}"


def webhook_deliveries(job_id: str) -> str:
    """The hash of a job's webhook deliveries: delivery id -> JSON (attempts, last status, times)."""
    return f"{PREFIX}webhooks:{job_id}"


# -- workers: jobs popped but not yet started ---------------------------------------------------


def worker_popped(worker_name: str) -> str:
    """The list of job ids a worker has popped and not yet started (normally zero or one)."""
    return f"{PREFIX}worker:{worker_name}:popped"


#: The names of workers that have a `worker_popped` list, so recovery finds them without a SCAN.
WORKERS_WITH_POPPED = PREFIX + "workers:popped"


# -- outcomes: counters, histograms and the event stream behind /api/stats and /metrics ---------

OUTCOME_EVENTS = PREFIX + "stats:events"
OUTCOME_COUNTS = PREFIX + "stats:counts"
RUN_HISTOGRAM = PREFIX + "stats:run_seconds"
WAIT_HISTOGRAM = PREFIX + "stats:wait_seconds"
#: The id of the last event folded into the counts and histograms (lifecycle/tallies).
OUTCOMES_FOLDED = PREFIX + "stats:folded"

# -- costs: the ledger, spend counters, rollups, budget pools, rate-limit windows ---------------

LEDGER = PREFIX + "ledger"
#: All-time totals by model and job type (Prometheus counters read it).
COST_TOTALS = PREFIX + "costs:totals"


def job_cost(job_id: str) -> str:
    """The hash of one job's model usage."""
    return f"{PREFIX}cost:job:{job_id}"


def spend(window: str, at: datetime) -> str:
    """The spend counter (USD micros) of budget `window` (total, daily, hourly) containing `at`, whose
    date and hour are local to FEYNMAN_TIMEZONE (the hour keeps its UTC offset: a repeated hour at a
    clock change is two counters)."""
    if window == "daily":
        return f"{PREFIX}spend:day:{at:%Y-%m-%d}"
    if window == "hourly":
        offset = "" if at.utcoffset() in (None, timedelta(0)) else f"{at:%z}"
        return f"{PREFIX}spend:hour:{at:%Y-%m-%dT%H}{offset}"
    return f"{PREFIX}spend:total"


def rollup_index(granularity: str) -> str:
    """The sorted set of stored rollups of one granularity, scored by window start."""
    return f"{PREFIX}costs:{granularity}:index"


def rollup_marker(granularity: str) -> str:
    """The start of the newest complete window already rolled up."""
    return f"{PREFIX}costs:{granularity}:rolled_through"


def rollup(granularity: str, start: datetime) -> str:
    """Where the rollup of one window is stored."""
    return f"{PREFIX}costs:{granularity}:{start:%Y-%m-%dT%H:%M:%SZ}"


#: Budget pools: (hash of member -> micros, total micros, sorted set of member -> deadline in Redis
#: server seconds). Reserved at enqueue; in flight per model call.
BUDGET_RESERVED = (
    PREFIX + "budget:reserved",
    PREFIX + "budget:reserved_total",
    PREFIX + "budget:reserved_deadlines",
)
BUDGET_INFLIGHT = (
    PREFIX + "budget:inflight",
    PREFIX + "budget:inflight_total",
    PREFIX + "budget:inflight_deadlines",
)
#: Budgets set at run time (PUT /api/budget): `total|daily|hourly` -> USD or `none`, when and by whom.
CONTROL_BUDGETS = PREFIX + "control:budgets"
#: Rate limits set at run time (PUT /api/limits): `chat.rpm`, `embeddings.tpm`, … -> value or `none`.
CONTROL_LIMITS = PREFIX + "control:limits"
#: Where rate-limit windows live (the `limits` library used this prefix before the bucketed windows).
RATE_LIMIT_PREFIX = PREFIX + "ratelimit"


def rate_window(namespace: str, name: str) -> str:
    """The bucketed window of one rate limit (`rpm`, `tpm`, `rph`) of `llm` or `embeddings` calls: a
    hash of bucket index -> count, at most a fixed number of fields whatever the limit."""
    return f"{RATE_LIMIT_PREFIX}:{namespace}:{name}"


def provider_backoff(namespace: str) -> str:
    """Set (with a TTL) while a provider (`llm` or `embeddings`) has asked every caller to wait (a 429)."""
    return f"{PREFIX}ratelimit:{namespace}:provider-backoff"


PROVIDER_BACKOFF = provider_backoff("llm")

# -- memory: records and the vector store, kept apart per learner ----------------------------------

#: The vector namespace name memories live under: `memories.<learner tag>` per learner. Submitted
#: documents may not use it (nor any name starting with `memories.`).
MEMORY_NAMESPACE = "memories"


def _learner_tag(learner_id: str) -> str:
    # Learner ids are caller-chosen text: hashed, they fit a key and a namespace name.
    return hashlib.sha256(learner_id.encode()).hexdigest()[:32]


def learner_memories(learner_id: str) -> str:
    """The set of a learner's memory ids."""
    return f"{PREFIX}learner:{_learner_tag(learner_id)}:memories"


def memory(learner_id: str, memory_id: str) -> str:
    """One memory record (JSON) of a learner."""
    return f"{PREFIX}learner:{_learner_tag(learner_id)}:memory:{memory_id}"


def memory_namespace(learner_id: str) -> str:
    """The vector namespace of a learner's memories (a name; vector_namespace() gives its keys)."""
    return f"{MEMORY_NAMESPACE}.{_learner_tag(learner_id)}"


def is_memory_namespace(namespace: str) -> bool:
    """Whether a namespace name belongs to learners' memories (the old shared one included)."""
    return namespace == MEMORY_NAMESPACE or namespace.startswith(MEMORY_NAMESPACE + ".")


def legacy_memory(memory_id: str) -> str:
    """A memory record written before memories were kept per learner (read once, to move it)."""
    return f"{PREFIX}memory:{memory_id}"


#: SCAN pattern of those records.
LEGACY_MEMORY_PATTERN = legacy_memory("*")


def vector_namespace(namespace: str) -> list[str]:
    """matrix, labels, chunks, docs and meta keys of a vector namespace (one hash tag: one slot)."""
    tag = f"{PREFIX}vec:{{{namespace}}}"
    return [f"{tag}:{part}" for part in ("matrix", "labels", "chunks", "docs", "meta")]


# -- RQ's keys, read (and where RQ expects it, written) the way RQ itself does -------------------

#: RQ's pause of every worker (`rq suspend`); its TTL is a timed pause's remaining time.
RQ_SUSPENDED = "rq:suspended"
#: The set of queue keys RQ (and rq-dashboard, `rq info`) list queues from.
RQ_QUEUES = Queue.redis_queues_keys
#: rq-scheduler's sorted set of scheduled jobs.
RQ_SCHEDULER_JOBS = "rq:scheduler:scheduled_jobs"
#: SCAN pattern of rq-scheduler's live instances (each a key with a TTL).
RQ_SCHEDULER_INSTANCES = "rq:scheduler_instance:*"


#: The prefix of every RQ job hash. Lua scripts that reach jobs they learn of inside the script append
#: the id (and RQ's `:dependents` suffix) to it; they get the prefixes from here.
RQ_JOB_PREFIX = Job.redis_job_namespace_prefix
#: The prefix of every RQ queue list (Lua scripts append a queue name to it).
RQ_QUEUE_PREFIX = Queue.redis_queue_namespace_prefix


def rq_job(job_id: str) -> str:
    """RQ's hash of one job."""
    return Job.key_for(job_id)


def rq_dependents(job_id: str) -> str:
    """RQ's set of the ids that depend on a job."""
    return f"{Job.key_for(job_id)}:dependents"


def rq_execution(job_id: str, execution_id: str) -> str:
    """RQ's hash of one execution of a job; it expires when its worker stops heartbeating it."""
    return f"{RQ_KEY_PREFIX}:execution:{job_id}:{execution_id}"


def rq_registry(kind: str, queue: str) -> str:
    """RQ's registry `kind` (started, scheduled, deferred, canceled, failed, finished) of one queue."""
    registries: dict[str, type[BaseRegistry]] = {
        "started": StartedJobRegistry,
        "scheduled": ScheduledJobRegistry,
        "deferred": DeferredJobRegistry,
        "ready": ReadyJobRegistry,
        "canceled": CanceledJobRegistry,
        "failed": FailedJobRegistry,
        "finished": FinishedJobRegistry,
    }
    return str(registries[kind].key_template.format(queue))


def rq_queue(name: str) -> str:
    """RQ's list of the jobs waiting in queue `name`."""
    return Queue.redis_queue_namespace_prefix + name


def rq_worker(name: str) -> str:
    """RQ's hash of one worker (its heartbeat, current job, queues)."""
    return Worker.redis_worker_namespace_prefix + name
