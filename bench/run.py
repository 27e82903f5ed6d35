"""feynman_jobs against plain RQ, measured in the same run on the same Redis; prints one table.

Usage: bench/run   (or .venv/bin/python -m bench.run [--jobs 2000])

Everything talks to a throwaway redis-server on loopback. Each row pairs our path with the
comparable plain-RQ baseline and prints the ratio; nothing is asserted. The machine is shared and
noisy: read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import platform
import statistics
import tempfile
import time
from pathlib import Path

from redis import Redis
from rq import Queue

from bench.harness import (
    bench_spec,
    commands,
    ours_enqueue,
    percentile,
    plain_queue,
    rate,
    report,
    span,
    timed,
    wait_finished,
)
from feynman_jobs.settings import load_settings
from tests.support import Process, http, procfile_command, redis_server, start_web

ROWS: list[tuple[str, str, float, float, str, str]] = []
#: The groups of rows, each runnable alone with --only.
PARTS = ["enqueue", "batches", "worker", "priority"]
ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour", "window_start": "2026-11-23T10:00:00Z"}}


def row(what: str, unit: str, ours: float, plain: float, target: str, higher_is_better: bool = True) -> None:
    """Record one comparison."""
    ratio = ours / plain if higher_is_better else plain / ours
    ROWS.append((what, unit, ours, plain, f"{ratio:.2f}x", target))


def enqueue_rows(redis: Redis, url: str, base: str, count: int) -> None:
    settings = load_settings(redis_url=url)
    noop = bench_spec("bench.jobs.noop")
    plain = plain_queue("default", redis)
    bare = timed(lambda: [plain.enqueue("bench.jobs.noop") for _ in range(count)])
    ours = timed(lambda: [ours_enqueue(redis, settings, noop) for _ in range(count)])
    row("enqueue, one job per call (in process)", "jobs/s", rate(count, ours), rate(count, bare), ">= 0.7x")
    redis.flushdb()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        http_s = timed(
            lambda: list(pool.map(lambda _: http("POST", base + "/api/jobs", ROLLUP), range(count)))
        )
    row(
        "POST /api/jobs, 8 clients, gunicorn",
        "jobs/s",
        rate(count, http_s),
        rate(count, bare),
        "(vs bare loop)",
    )
    redis.flushdb()


def batch_rows(redis: Redis, base: str, count: int) -> None:
    plain = plain_queue("default", redis)
    rounds = max(5, count // 100)
    body = {"jobs": [ROLLUP] * 200}

    def ours() -> None:
        http("POST", base + "/api/batches", body)

    # Two of ours and one of RQ's first (the first request a gunicorn worker serves pays for its start),
    # then each batch of ours right after one of RQ's, and the median batch of each: on a shared
    # machine a burst of load falls on both sides, and a batch caught in one does not move the row.
    for _ in range(2):
        ours()
    _plain_batches(plain, 1)
    ours_s: list[float] = []
    bare_s: list[float] = []
    for _ in range(rounds):
        bare_s.append(timed(lambda: _plain_batches(plain, 1)))
        ours_s.append(timed(ours))
    row("POST /api/batches of 200 vs enqueue_many (median batch)", "jobs/s",
        rate(200, statistics.median(ours_s)), rate(200, statistics.median(bare_s)), ">= 0.7x")  # fmt: skip
    redis.flushdb()


def _plain_batches(queue: Queue, batches: int) -> None:
    for _ in range(batches):
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many([Queue.prepare_data("bench.jobs.noop") for _ in range(200)], pipeline=pipe)
            pipe.execute()


def worker(url: str, tmp: Path, ours: bool) -> Process:
    """A burst worker: the Procfile's line, or plain `rq worker` with the JSON serializer."""
    command = procfile_command("worker") if ours else "rq worker high default low -S json"
    return Process("worker", {"REDIS_URL": url}, tmp / f"worker-{time.monotonic_ns()}.log",
                   command=command + f" --burst --url {url}")  # fmt: skip


def throughput_rows(redis: Redis, url: str, tmp: Path, count: int) -> None:
    settings = load_settings(redis_url=url)
    for func, n in (("bench.jobs.noop", count // 4), ("bench.jobs.sleep_50ms", 60)):
        results = {}
        for ours in (False, True):
            redis.flushdb()
            before = commands(redis)
            if ours:
                ids = [ours_enqueue(redis, settings, bench_spec(func)) for _ in range(n)]
            else:
                plain = plain_queue("default", redis)
                ids = [plain.enqueue(func).id for _ in range(n)]
            proc = worker(url, tmp, ours)
            proc.proc.wait(600)
            proc.stop()
            wait_finished(redis, ids)
            results[ours] = (rate(n, span(redis, ids)), (commands(redis) - before) / n)
        name = func.rsplit(".", 1)[-1]
        row(f"worker throughput, {name} jobs", "jobs/s", results[True][0], results[False][0], ">= 0.9x")
        if func.endswith("noop"):
            extra = results[True][1] - results[False][1]
            ROWS.append(("Redis commands per job, enqueue + run", "commands", results[True][1],
                         results[False][1], f"+{extra:.0f}", "<= +10"))  # fmt: skip


def priority_rows(redis: Redis, url: str, tmp: Path) -> None:
    settings = load_settings(redis_url=url)
    for ours in (False, True):
        redis.flushdb()
        low = plain_queue("low", redis)
        for _ in range(1000):
            if ours:
                ours_enqueue(redis, settings, bench_spec("bench.jobs.sleep_50ms", "low"))
            else:
                low.enqueue("bench.jobs.sleep_50ms")
        proc = worker(url, tmp, ours)
        time.sleep(1)
        waits = []
        for _ in range(20):
            if ours:
                job_id = ours_enqueue(redis, settings, bench_spec("bench.jobs.noop", "high"))
            else:
                job_id = plain_queue("high", redis).enqueue("bench.jobs.noop").id
            wait_finished(redis, [job_id], timeout=30)
            from feynman_jobs.queueing.wiring import fetch_job

            job = fetch_job(job_id, redis)
            assert job.started_at
            assert job.enqueued_at
            waits.append((job.started_at - job.enqueued_at).total_seconds() * 1000)
            time.sleep(0.2)
        proc.stop()
        if ours:
            ours_p = (percentile(waits, 0.5), percentile(waits, 0.95))
        else:
            plain_p = (percentile(waits, 0.5), percentile(waits, 0.95))
    row("high job enqueue->start p50, low holds 1,000 x 50 ms", "ms", ours_p[0], plain_p[0], "", False)
    row(
        "high job enqueue->start p95, low holds 1,000 x 50 ms",
        "ms",
        ours_p[1],
        plain_p[1],
        "<= 150 ms",
        False,
    )


def main() -> None:
    """Run every comparison and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per enqueue measurement")
    parser.add_argument("--only", choices=PARTS, nargs="+", default=PARTS, help="run only these rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder) / "redis") as url:
        tmp = Path(folder)
        redis = Redis.from_url(url)
        if {"enqueue", "batches"} & set(args.only):
            web_proc, base = start_web(url, tmp / "web.log")
            try:
                if "enqueue" in args.only:
                    enqueue_rows(redis, url, base, args.jobs)
                if "batches" in args.only:
                    batch_rows(redis, base, args.jobs)
            finally:
                web_proc.stop()
        if "worker" in args.only:
            throughput_rows(redis, url, tmp, args.jobs)
        if "priority" in args.only:
            priority_rows(redis, url, tmp)
        redis.close()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    header = ("measurement", "unit", "feynman_jobs", "plain RQ", "ratio", "target")
    widths = [
        max(len(str(r[i])) if not isinstance(r[i], float) else 9 for r in [header, *ROWS]) for i in range(6)
    ]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in ROWS:
        cells = [f"{c:.1f}" if isinstance(c, float) else str(c) for c in r]
        print(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
    fields = ("what", "unit", "ours", "plain", "ratio", "target")
    report("run", {"rows": [dict(zip(fields, r, strict=True)) for r in ROWS]})


if __name__ == "__main__":
    main()
