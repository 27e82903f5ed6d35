"""Shared pieces of the benchmarks: a Redis, processes, timing, and our producer path for any job."""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from feynman_jobs.lifecycle.status import describe
from feynman_jobs.queueing import writer
from feynman_jobs.queueing.catalog import JobSpec
from feynman_jobs.queueing.payloads import CleanRegistries
from feynman_jobs.queueing.planning import JobPlan
from feynman_jobs.queueing.wiring import JsonJob
from feynman_jobs.settings import Settings

#: bench/run sets this to a directory: each benchmark writes its figures there as <name>.json, and
#: bench.summary reads them back into the issue-15 table.
RESULTS_DIR_ENV = "BENCH_RESULTS_DIR"


def plain_queue(name: str, redis: Redis) -> Queue:
    """A plain RQ queue with RQ's JSON serializer: the baseline's producer."""
    return Queue(name, connection=redis, serializer=JSONSerializer)


def bench_spec(func: str, queue: str = "default") -> JobSpec:
    """A catalog-shaped spec for a benchmark job, so it goes through our producer like any type."""
    return JobSpec(name=func.rsplit(".", 1)[-1], func=func, queue=queue, timeout_s=60, max_timeout_s=60,
                   max_retries=0, backoff_base_s=1, payload_model=CleanRegistries)  # fmt: skip


def ours_enqueue(redis: Redis, settings: Settings, spec: JobSpec, queue: str | None = None) -> str:
    """What POST /api/jobs does for one job, without HTTP: plan, write, build the status document."""
    import uuid

    plan = JobPlan(job_id=str(uuid.uuid4()), spec=spec, queue=queue or spec.queue, kwargs={}, timeout=60,
                   result_ttl=settings.result_ttl, failure_ttl=settings.failure_ttl, retry=None,
                   meta={"max_retries": 0, "follow_up": [], "user": {}, "batch_id": None})  # fmt: skip
    [job] = writer.write(redis, [plan], claims=[], ttl=60)
    describe(redis, job, fresh=True)
    return job.id


def rate(count: int, seconds: float) -> float:
    """Per second."""
    return count / seconds if seconds > 0 else float("inf")


def timed(work: Callable[[], Any]) -> float:
    """Seconds `work` took."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def wait_finished(redis: Redis, ids: list[str], timeout: float = 600) -> None:
    """Until every job has finished (raises if one failed)."""
    deadline = time.monotonic() + timeout
    pending = list(ids)
    while pending:
        statuses = [redis.hget(JsonJob.key_for(job_id), "status") for job_id in pending[-50:]]
        if any(s == JobStatus.FAILED.value.encode() for s in statuses):
            raise RuntimeError("a benchmark job failed")
        if all(s == JobStatus.FINISHED.value.encode() for s in statuses):
            pending = pending[:-50]
            continue
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark jobs did not finish")
        time.sleep(0.01)


def commands(redis: Redis) -> int:
    """Redis commands served so far (INFO commandstats), minus the INFO calls themselves."""
    stats = redis.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def span(redis: Redis, ids: list[str]) -> float:
    """Seconds from the first job's start to the last job's end, read from the jobs themselves."""
    starts, ends = [], []
    for job_id in ids:
        job = JsonJob.fetch(job_id, connection=redis)
        assert job.started_at
        assert job.ended_at
        starts.append(job.started_at.timestamp())
        ends.append(job.ended_at.timestamp())
    return max(ends) - min(starts)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    """The median."""
    return statistics.median(values)


def report(name: str, figures: dict[str, Any]) -> None:
    """Write a benchmark's figures to `$BENCH_RESULTS_DIR/<name>.json` (nothing when it is unset)."""
    folder = os.environ.get(RESULTS_DIR_ENV)
    if folder:
        path = Path(folder) / f"{name}.json"
        path.write_text(json.dumps(figures, indent=2, sort_keys=True))


def tree_pss_kb(root: int) -> int:
    """PSS of `root` and every process below it, in kB (processes that vanish mid-read count 0)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grown = {root}, True
    while grown:
        below = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= below
        grown = bool(below)
    total = 0
    for pid in tree:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0)
    return total
