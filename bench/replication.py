"""What "accepted means replicated" costs: enqueue latency with and without Redis WAIT; prints a table.

Usage: .venv/bin/python -m bench.replication [--jobs 1000]

A master and one replica (append-only, everysec) on loopback. Each row enqueues `--jobs` jobs one after
another the way POST /api/jobs does (lifecycle/submit.submit, with an idempotency key), without HTTP,
and compares with plain RQ's `Queue.enqueue` on the same master. Nothing is asserted; the machine is
shared and noisy: read the differences, not the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis

from bench.harness import commands, percentile, plain_queue
from feynman_jobs.lifecycle.submit import submit
from feynman_jobs.queueing.catalog import EVERYONE
from feynman_jobs.queueing.replication import online_replicas
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.settings import load_settings
from tests.support import free_port, wait_until

ROLLUP = {"granularity": "hour", "window_start": "2026-11-23T10:00:00Z"}


@contextmanager
def master_and_replica(tmp: Path) -> Iterator[tuple[int, int]]:
    """Two redis-servers, the second replicating the first; their ports."""
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "redis-server"
    ports = [free_port(), free_port()]
    procs = []
    for n, port in enumerate(ports):
        (tmp / str(port)).mkdir()
        extra = ["--replicaof", "127.0.0.1", str(ports[0])] if n else []
        folder = str(tmp / str(port))
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--appendonly", "yes"]
        procs.append(subprocess.Popen([*command, "--save", "", *extra], stdout=subprocess.DEVNULL))
    try:
        master = Redis(port=ports[0])
        wait_until(lambda: _replicas(master) == 1, 20, "the replica to sync")
        yield ports[0], ports[1]
    finally:
        for proc in reversed(procs):  # the replica first: it would wait for its master
            proc.terminate()
            proc.wait(30)


def _replicas(redis: Redis) -> int:
    try:
        return online_replicas(redis.info("replication"))
    except Exception:
        return 0


def latencies(enqueue: Callable[[], object], count: int) -> list[float]:
    """Milliseconds each of `count` sequential calls took."""
    out = []
    for _ in range(count):
        start = time.perf_counter()
        enqueue()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, master_and_replica(Path(tmp)) as (port, _):
        redis = Redis(port=port)
        url = f"redis://127.0.0.1:{port}/0"
        plain = plain_queue("default", redis)
        rows: list[tuple[str, list[float], float]] = []

        def measure(label: str, enqueue: Callable[[], object]) -> None:
            latencies(enqueue, 50)  # warm up
            before = commands(redis)
            values = latencies(enqueue, args.jobs)
            rows.append((label, values, (commands(redis) - before) / args.jobs))

        measure("plain RQ Queue.enqueue (baseline)", lambda: plain.enqueue("bench.jobs.noop"))
        for replicas in (0, 1):
            settings = load_settings(redis_url=url, redis_min_replicas=replicas)

            def ours(settings: object = settings) -> object:
                request = EnqueueRequest(
                    type="rollup_costs", payload=ROLLUP, idempotency_key=uuid.uuid4().hex
                )
                return submit(redis, settings, request, audiences=EVERYONE)  # type: ignore[arg-type]

            measure(f"feynman_jobs submit, FEYNMAN_REDIS_MIN_REPLICAS={replicas}", ours)
    print(f"enqueue latency, {args.jobs} sequential enqueues each, master + 1 replica on loopback (ms)")
    header = ("path", "p50", "p95", "p99", "commands/enqueue", "p50 vs baseline")
    print(" | ".join(header))
    print("|".join("---" for _ in header))
    base = percentile(rows[0][1], 0.5)
    for label, values, per in rows:
        p50 = percentile(values, 0.5)
        print(f"{label} | {p50:.3f} | {percentile(values, 0.95):.3f} | {percentile(values, 0.99):.3f} | "
              f"{per:.1f} | {p50 / base:.2f}x")  # fmt: skip
    added = percentile(rows[2][1], 0.5) - percentile(rows[1][1], 0.5)
    print(f"WAIT adds {added:.3f} ms at p50 (one extra round trip: INCR fence + WAIT 1 500, pipelined);")
    print("commands count the replica's REPLCONF ACK that answers each WAIT")


if __name__ == "__main__":
    main()
