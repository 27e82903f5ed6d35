"""Prometheus metrics read from Redis at scrape time, so every web process reports the same figures.

Nothing is counted in process memory: counters come from all-time hashes that only ever grow (the job
outcomes folded from their event stream first, lifecycle/tallies.py; the cost ledger's), so they never go
backwards, however many gunicorn and rq worker processes there are.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis
from rq import Worker
from rq.serializers import JSONSerializer
from rq.worker import WorkerStatus

from feynman_jobs import keys
from feynman_jobs.costs import budget, ledger, ratelimit
from feynman_jobs.lifecycle import tallies
from feynman_jobs.ops.snapshot import REGISTRIES, paused, queue_summary
from feynman_jobs.queueing.wiring import QUEUE_NAMES, JsonJob
from feynman_jobs.settings import Settings

PREFIX = "feynman_"
HISTOGRAMS = {
    "job_run_seconds": (keys.RUN_HISTOGRAM, "Time from a job's start to its end, per attempt."),
    "job_wait_seconds": (keys.WAIT_HISTOGRAM, "Time a job waited in its queue before it started."),
}


class RedisCollector(Collector):
    """Queue, worker, job and cost metrics, read from Redis whenever Prometheus scrapes."""

    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._workers()
        yield from self._jobs()
        yield from self._costs()
        yield from self._budgets()
        yield from self._limits()

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(PREFIX + "queue_depth", "Jobs waiting in the queue.", labels=["queue"])
        registry = GaugeMetricFamily(
            PREFIX + "queue_registry_jobs",
            "Jobs in each RQ registry of the queue.",
            labels=["queue", "registry"],
        )
        oldest = GaugeMetricFamily(
            PREFIX + "queue_oldest_waiting_seconds",
            "How long the oldest waiting job has waited (0 when the queue is empty).",
            labels=["queue"],
        )
        for summary in queue_summary(self.connection):
            depth.add_metric([summary["name"]], summary["depth"])
            for name in REGISTRIES:
                registry.add_metric([summary["name"], name], summary[name])
            oldest.add_metric([summary["name"]], summary["oldest_waiting_s"] or 0.0)
        yield from (depth, registry, oldest)
        if self.settings.max_queued is not None:
            limit = GaugeMetricFamily(
                PREFIX + "queue_limit",
                "FEYNMAN_MAX_QUEUED: the depth past which an enqueue is refused with 503.",
                labels=["queue"],
            )
            for name in QUEUE_NAMES:
                limit.add_metric([name], self.settings.max_queued)
            yield limit
        yield GaugeMetricFamily(
            PREFIX + "queues_paused",
            "1 while workers are told to take no new jobs.",
            value=int(paused(self.connection)),
        )

    def _workers(self) -> Iterator[Metric]:
        states = {state.value: 0 for state in WorkerStatus}
        for worker in Worker.all(connection=self.connection, job_class=JsonJob, serializer=JSONSerializer):
            state = str(getattr(worker.get_state(), "value", worker.get_state()))
            states[state] = states.get(state, 0) + 1
        workers = GaugeMetricFamily(PREFIX + "workers", "Live RQ workers by state.", labels=["state"])
        for state, count in sorted(states.items()):
            workers.add_metric([state], count)
        yield workers

    def _jobs(self) -> Iterator[Metric]:
        tallies.fold(self.connection)
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.OUTCOME_COUNTS)
            for key, _doc in HISTOGRAMS.values():
                pipe.hgetall(key)
            counts, *histograms = pipe.execute()
        jobs = CounterMetricFamily(
            PREFIX + "jobs",
            "Job attempts by outcome: finished, failed, retried, stopped.",
            labels=["type", "queue", "outcome"],
        )
        for field, value in sorted(_decoded(counts).items()):
            job_type, queue, outcome = field.split("|")
            jobs.add_metric([job_type, queue, outcome], int(value))
        yield jobs
        for (name, (_key, doc)), raw in zip(HISTOGRAMS.items(), histograms, strict=True):
            yield _histogram(PREFIX + name, doc, _decoded(raw))

    def _costs(self) -> Iterator[Metric]:
        cost = CounterMetricFamily(PREFIX + "llm_cost_usd", "Model spend in USD.", labels=["model", "type"])
        tokens = CounterMetricFamily(
            PREFIX + "llm_tokens",
            "Model tokens by direction (in, out).",
            labels=["model", "type", "direction"],
        )
        calls = CounterMetricFamily(PREFIX + "llm_calls", "Model calls.", labels=["model", "type"])
        for row in ledger.totals(self.connection):
            labels = [row["model"], row["job_type"]]
            cost.add_metric(labels, row.get("usd_micros", 0) / 1_000_000)
            tokens.add_metric([*labels, "in"], row.get("tokens_in", 0))
            tokens.add_metric([*labels, "out"], row.get("tokens_out", 0))
            calls.add_metric(labels, row.get("calls", 0))
        yield from (cost, tokens, calls)

    def _budgets(self) -> Iterator[Metric]:
        labels = ["window"]
        limit = GaugeMetricFamily(PREFIX + "budget_limit_usd", "Configured budget.", labels=labels)
        spent = GaugeMetricFamily(PREFIX + "budget_spent_usd", "Spent in the current window.", labels=labels)
        remaining = GaugeMetricFamily(
            PREFIX + "budget_remaining_usd", "Left in the current window, after reservations.", labels=labels
        )
        for window in budget.windows(self.connection, self.settings):
            limit.add_metric([window.name], window.limit_micros / 1_000_000)
            spent.add_metric([window.name], window.spent_micros / 1_000_000)
            remaining.add_metric([window.name], window.remaining_micros / 1_000_000)
        yield from (limit, spent, remaining)

    def _limits(self) -> Iterator[Metric]:
        labels = ["kind", "limit"]
        limit = GaugeMetricFamily(PREFIX + "ratelimit_limit", "Rate limit in force.", labels=labels)
        used = GaugeMetricFamily(
            PREFIX + "ratelimit_used", "What the rate limit's current window holds.", labels=labels
        )
        for kind, named in ratelimit.usage(self.connection, self.settings).items():
            for name, figures in named.items():
                if figures["limit"] is not None:
                    limit.add_metric([kind, name], figures["limit"])
                    used.add_metric([kind, name], figures["used"])
        yield from (limit, used)


def _decoded(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {key.decode(): value.decode() for key, value in raw.items()}


def _histogram(name: str, doc: str, fields: dict[str, str]) -> HistogramMetricFamily:
    """One Prometheus histogram from the outcomes' per-bucket `type|queue|<le>` counts (accumulated here)."""
    series: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for field, value in fields.items():
        job_type, queue, part = field.split("|")
        series[(job_type, queue)][part] = value
    family = HistogramMetricFamily(name, doc, labels=["type", "queue"])
    labels = [tallies.bucket_label(bound) for bound in tallies.BUCKETS]
    for (job_type, queue), parts in sorted(series.items()):
        running = 0.0
        buckets = []
        for label in labels:
            running += float(parts.get(label, 0))
            buckets.append((label, running))
        family.add_metric([job_type, queue], buckets, float(parts.get("sum", 0)))
    return family


def registry_for(connection: Redis, settings: Settings) -> CollectorRegistry:
    """A registry of its own (never the global one), so many apps can live in one process."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(connection, settings))
    return registry
