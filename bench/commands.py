"""Redis commands per no-op job by command name, ours against plain RQ, enqueue and run apart.

Usage: .venv/bin/python -m bench.commands [--jobs 100]

INFO commandstats deltas (commands run inside Lua scripts count too) over enqueueing N no-op jobs and
running them with a burst worker: the Procfile's line against `rq worker -S json`; ours then folds the
outcome events into the all-time totals once, as `/metrics` and the scheduler's upkeep do. The figures are
counts, not timings, so they hold on a busy machine; docs/benchmarks.md says why each extra is there.
"""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from redis import Redis

from bench.harness import bench_spec, ours_enqueue, plain_queue, report, wait_finished
from bench.run import worker
from feynman_jobs.lifecycle import tallies
from feynman_jobs.settings import load_settings
from tests.support import redis_server


def _stats(redis: Redis) -> Counter[str]:
    stats = redis.info("commandstats")
    counts = {key[len("cmdstat_") :]: int(v["calls"]) for key, v in stats.items() if key != "cmdstat_info"}
    return Counter(counts)


def measure(redis: Redis, url: str, tmp: Path, count: int, ours: bool) -> tuple[Counter[str], Counter[str]]:
    """Commands of enqueueing `count` no-op jobs, and of running them."""
    redis.flushdb()
    before = _stats(redis)
    if ours:
        settings = load_settings(redis_url=url)
        ids = [ours_enqueue(redis, settings, bench_spec("bench.jobs.noop")) for _ in range(count)]
    else:
        queue = plain_queue("default", redis)
        ids = [queue.enqueue("bench.jobs.noop").id for _ in range(count)]
    enqueued = _stats(redis)
    proc = worker(url, tmp, ours)
    proc.proc.wait(600)
    proc.stop()
    wait_finished(redis, ids)
    if ours:  # the all-time totals, folded from the outcome events as /metrics and the upkeep do
        tallies.fold(redis)
    return enqueued - before, _stats(redis) - enqueued


def main() -> None:
    """Measure both and print one row per command, per job."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder) / "redis") as url:
        redis = Redis.from_url(url)
        plain = measure(redis, url, Path(folder), args.jobs, ours=False)
        ours = measure(redis, url, Path(folder), args.jobs, ours=True)
        redis.close()
    columns = [plain[0], plain[1], ours[0], ours[1]]

    def cells(values: list[float]) -> str:
        return " | ".join(f"{value:>{width}.2f}" for value, width in zip(values, (13, 9, 12, 8), strict=True))

    print(f"| {'command':<18} | plain enqueue | plain run | ours enqueue | ours run | extra |")
    print(f"|{'-' * 20}|--------------:|----------:|-------------:|---------:|------:|")
    for name in sorted(set().union(*columns)):
        per_job = [column[name] / args.jobs for column in columns]
        extra = per_job[2] + per_job[3] - per_job[0] - per_job[1]
        print(f"| {name:<18} | {cells(per_job)} | {extra:>+5.2f} |")
    totals = [sum(column.values()) / args.jobs for column in columns]
    extra = totals[2] + totals[3] - totals[0] - totals[1]
    print(f"| {'total':<18} | {cells(totals)} | {extra:>+5.2f} |")
    report("commands", {"jobs": args.jobs, "plain": totals[0] + totals[1], "ours": totals[2] + totals[3]})


if __name__ == "__main__":
    main()
