"""Our worker line beside plain RQ, Celery and Dramatiq: the same three workloads on one Redis, one table.

Our line runs as the Procfile runs it (FEYNMAN_WORKER_CONCURRENCY as set, else its default), and with
16 slots too when that is not already what it runs.

Usage: bench/run (installs the `bench` extra and runs this last), or alone after
`.venv/bin/pip install -e '.[dev,bench]'`: .venv/bin/python -m bench.peers [--noop 400] [--sleep 200]
[--calls 64] [--celery-concurrency 2] [--dramatiq-threads 8]

Everything runs on this machine: one throwaway redis-server and one fake chat-completions provider
(tests/chat_server.py, on a threaded local HTTP server) that answers every call after 2 s and counts
the calls it holds at once. For each worker line and workload the jobs are queued first, then the
line is started, and throughput is jobs divided by the time from the first job's start to the last
job's end. The workloads are bench/peer_jobs.py's functions, the same under every framework; only the
2 s workload of our line differs: there it is the real analyze_conversation job (catalog, producer,
provider client, usage records), against one bare HTTP call of the same size for the others.

While 2 s calls run, the PSS of the line's whole process tree (the process and every descendant,
/proc/<pid>/smaps_rollup) is sampled every 0.25 s; the table shows the largest sample. Calls in
flight per GB = the provider's peak of calls held at once / that PSS in GB. Asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from redis import Redis
from werkzeug import Response

from bench.harness import bench_spec, ours_enqueue, plain_queue, rate, report, span, tree_pss_kb
from bench.peer_jobs import DONE, WORKLOADS
from feynman_jobs.lifecycle import submit
from feynman_jobs.queueing.requests import parse_enqueue_request
from feynman_jobs.queueing.wiring import JsonJob
from feynman_jobs.settings import load_settings
from tests.chat_server import FakeProvider, model_answer
from tests.support import Process, analyze_body, procfile_command, redis_server

#: How long the fake provider takes to answer each call.
CALL_S = 2.0
#: How often the worker line's memory is read while calls are in flight.
SAMPLE_S = 0.25
#: Our line's target (issue 15): model calls in flight per GB of worker memory.
TARGET_PER_GB = 150
#: Our line runs twice: as the Procfile runs it (FEYNMAN_WORKER_CONCURRENCY's default) and with this many
#: slots.
SLOTS = 16


@dataclass(frozen=True)
class Line:
    """One worker line: how to start it and how to queue a workload's jobs for it."""

    label: str
    command: str
    #: Queues `count` jobs of a workload; returns RQ job ids when the span is read from the jobs.
    send: Callable[[str, int], list[str]]
    #: How bench.summary finds the line: plain, ours, ours-16, celery, dramatiq.
    key: str = ""
    #: Environment the line runs with beyond the shared one.
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    jobs_per_s: dict[str, float]
    in_flight: int = 0
    pss_kb: int = 0


def lines(redis: Redis, url: str, celery_concurrency: int, dramatiq_threads: int) -> list[Line]:
    """Plain RQ, ours (the Procfile's line), Celery prefork and Dramatiq threads, in table order."""
    settings = load_settings(redis_url=url)

    def plain(name: str, count: int) -> list[str]:
        queue = plain_queue("default", redis)
        for _ in range(count):
            queue.enqueue(f"bench.peer_jobs.{name}")
        return []

    def ours(name: str, count: int) -> list[str]:
        if name == "call_provider":
            bodies = [analyze_body(f"bench-{n}") for n in range(count)]
            return [submit.submit(redis, settings, parse_enqueue_request(b)).job.id for b in bodies]
        spec = bench_spec(f"bench.peer_jobs.{name}")
        for _ in range(count):
            ours_enqueue(redis, settings, spec)
        return []  # read from DONE, like the others

    def peer(module: str) -> Callable[[str, int], list[str]]:
        def send(name: str, count: int) -> list[str]:
            importlib.import_module(module).send(name, count)
            return []

        return send

    # The value the line runs with: the variable as passed through, or the default where settings have one.
    concurrency = os.environ.get("FEYNMAN_WORKER_CONCURRENCY") or (
        f"unset: {getattr(settings, 'worker_concurrency', 1)}"
    )
    # With 16 slots too, unless the line runs 16 already (a one-slot line would take 64 x 2 s).
    sixteen = [] if concurrency.endswith(str(SLOTS)) else [
        Line(f"feynman_jobs worker line, FEYNMAN_WORKER_CONCURRENCY={SLOTS}",
             procfile_command("worker") + f" --url {url}", ours, f"ours-{SLOTS}",
             {"FEYNMAN_WORKER_CONCURRENCY": str(SLOTS)}),
    ]  # fmt: skip
    return [
        Line("plain `rq worker -S json`", f"rq worker high default low -S json --url {url}", plain, "plain"),
        Line(
            f"feynman_jobs worker line, FEYNMAN_WORKER_CONCURRENCY={concurrency}",
            procfile_command("worker") + f" --url {url}",
            ours,
            "ours",
        ),
        *sixteen,
        Line(
            f"Celery {version('celery')} prefork, concurrency {celery_concurrency}",
            f"celery -A bench.peer_celery worker --pool prefork --concurrency {celery_concurrency} "
            "--loglevel WARNING --without-gossip --without-mingle --without-heartbeat",
            peer("bench.peer_celery"),
            "celery",
        ),
        Line(
            f"Dramatiq {version('dramatiq')}, 1 process x {dramatiq_threads} threads",
            f"dramatiq bench.peer_dramatiq --processes 1 --threads {dramatiq_threads}",
            peer("bench.peer_dramatiq"),
            "dramatiq",
        ),
    ]


def measure(
    line: Line,
    workload: str,
    count: int,
    redis: Redis,
    env: dict[str, str],
    log: Path,
    provider: FakeProvider,
) -> tuple[float, int, int]:
    """Queue, start the line, wait for every job; jobs/s, peak calls in flight, largest PSS in kB."""
    redis.flushdb()
    provider.max_in_flight = 0
    ids = line.send(workload, count)
    proc = Process("worker", {**env, **line.env}, log, command=line.command)
    pss, deadline = 0, time.monotonic() + 120 + count * (CALL_S if workload == "call_provider" else 1)
    try:
        while not _done(redis, ids, count):
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{line.label} stopped or timed out on {workload}:\n{proc.log()[-3000:]}")
            if workload == "call_provider":
                pss = max(pss, tree_pss_kb(proc.proc.pid))
            time.sleep(SAMPLE_S if workload == "call_provider" else 0.02)
    finally:
        proc.stop()
    if ids:
        seconds = span(redis, ids)
    else:
        records = [tuple(map(float, r.split())) for r in redis.lrange(DONE, 0, -1)]
        seconds = max(end for _, end in records) - min(start for start, _ in records)
    return rate(count, seconds), provider.max_in_flight, pss


def _done(redis: Redis, ids: list[str], count: int) -> bool:
    if not ids:
        return int(redis.llen(DONE)) >= count
    with redis.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(JsonJob.key_for(job_id), "status")
        statuses = pipe.execute()
    if b"failed" in statuses:
        raise RuntimeError("an analysis job failed")
    return statuses.count(b"finished") == count


def slow_answer(body: dict[str, Any]) -> Response:
    """The fake provider's answer, after CALL_S."""
    time.sleep(CALL_S)
    return model_answer(body)


def per_gb(result: Result) -> float:
    """Peak calls in flight per GB of the line's largest PSS."""
    return result.in_flight / (result.pss_kb / 1024 / 1024) if result.pss_kb else 0.0


def table(results: list[tuple[Line, Result]]) -> list[str]:
    """The printed rows: jobs/s per workload, then the 2 s workload's concurrency and memory."""
    head = [
        "worker line",
        "no-op jobs/s",
        "50 ms jobs/s",
        "2 s call jobs/s",
        "calls in flight",
        "PSS MB",
        "in flight/GB",
        "ratio",
        "target",
    ]
    rows, base = [], 0.0
    for line, result in results:
        base = base or per_gb(result)
        rows.append(
            [
                line.label,
                *(f"{result.jobs_per_s[w]:.1f}" for w in WORKLOADS),
                str(result.in_flight),
                f"{result.pss_kb / 1024:.0f}",
                f"{per_gb(result):.0f}",
                f"{per_gb(result) / base:.2f}x" if base else "-",
                f">= {TARGET_PER_GB}/GB" if line.label.startswith("feynman_jobs") else "",
            ]
        )
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    out.append("-|-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return out


def main() -> None:
    """Run every line on every workload and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--noop", type=int, default=400, help="no-op jobs per line")
    parser.add_argument("--sleep", type=int, default=200, help="50 ms jobs per line")
    parser.add_argument("--calls", type=int, default=64, help="2 s provider calls per line")
    parser.add_argument("--celery-concurrency", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--dramatiq-threads", type=int, default=8)
    args = parser.parse_args()
    counts = {"noop": args.noop, "sleep_50ms": args.sleep, "call_provider": args.calls}
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per call otherwise
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    provider = FakeProvider(server)
    provider.script("", slow_answer)
    results, load_before = [], os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder) / "redis") as url:
            os.environ["BENCH_REDIS_URL"] = url  # read by the peers' modules when bench/peers sends
            env = {
                "REDIS_URL": url,
                "BENCH_REDIS_URL": url,
                "BENCH_PROVIDER_URL": provider.url,
                "FEYNMAN_LLM_BASE_URL": provider.url,
                "FEYNMAN_LLM_MODEL": "test-model",
            }
            redis = Redis.from_url(url)
            for line in lines(redis, url, args.celery_concurrency, args.dramatiq_threads):
                result = Result({})
                for workload in WORKLOADS:
                    log = Path(folder) / f"{workload}-{time.monotonic_ns()}.log"
                    figures = measure(line, workload, counts[workload], redis, env, log, provider)
                    result.jobs_per_s[workload] = figures[0]
                    if workload == "call_provider":
                        result.in_flight, result.pss_kb = figures[1], figures[2]
                results.append((line, result))
            redis.close()
    finally:
        server.clear()
        server.stop()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, rq {version('rq')}; load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end (other processes share the cores)"
    )
    print(f"jobs per line: {args.noop} no-op, {args.sleep} x 50 ms, {args.calls} x {CALL_S:.0f} s call")
    print("\n".join(table(results)))
    report("peers", {
        "lines": {
            line.key: {
                "label": line.label,
                "jobs_per_s": result.jobs_per_s,
                "in_flight": result.in_flight,
                "pss_kb": result.pss_kb,
                "per_gb": per_gb(result),
            }
            for line, result in results
        },
        "target_per_gb": TARGET_PER_GB,
    })  # fmt: skip


if __name__ == "__main__":
    main()
