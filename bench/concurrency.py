"""Model calls in flight per GB of worker memory: ways to run several jobs per worker line, side by side.

Usage: .venv/bin/python -m bench.concurrency [--jobs 64] [--slots 8,16,32,64]

Every candidate runs the same analysis jobs (enqueued through the API, one model call each) against a
local fake provider that answers each call in 2 s, in burst mode. For each it prints jobs/s, the most
calls the provider had open at once, and the peak PSS of the worker line's processes (summed over
its process tree, sampled every 0.2 s). Plain `rq worker` is the baseline. The one-job-at-a-time
candidates run a quarter of the jobs (their calls in flight are 1 by construction). Asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_httpserver import HTTPServer
from redis import Redis
from werkzeug import Response

from bench.harness import rate, span, wait_finished
from tests.chat_server import FakeProvider, model_answer
from tests.support import Process, analyze_body, descendants, http, procfile_command, redis_server, start_web

#: How long the fake provider takes to answer a model call.
CALL_S = 2.0
POOL_FLAGS = (
    "-w feynman_jobs.processes.slots.SlotWorker -c feynman_jobs.processes.worker_config -S json "
    "-j feynman_jobs.queueing.wiring.JsonJob --queue-class feynman_jobs.queueing.wiring.JsonQueue "
    "--exception-handler feynman_jobs.lifecycle.outcomes.record_attempt_error"
)


def candidates(slots: list[int]) -> list[tuple[str, str, dict[str, str], bool]]:
    """(name, command, extra environment, runs one job at a time)."""
    ours = procfile_command("worker")
    plain = "rq worker high default low -S json -j feynman_jobs.queueing.wiring.JsonJob"
    rows = [
        ("plain rq worker (fork per job)", plain, {}, True),
        ("Procfile line, CONCURRENCY=1 (FeynmanWorker)", ours, {"FEYNMAN_WORKER_CONCURRENCY": "1"}, True),
        (
            "rq worker-pool -n 4 (processes)",
            f"rq worker-pool high default low -n 4 {POOL_FLAGS}",
            {"FEYNMAN_WORKER_CONCURRENCY": "1"},
            False,
        ),
    ]
    for n in slots:
        rows.append(
            (f"Procfile line, CONCURRENCY={n} (threads)", ours, {"FEYNMAN_WORKER_CONCURRENCY": str(n)}, False)
        )
    return rows


def pss_kb(root: int) -> int:
    """PSS of a process and all its descendants, in kB (0 for any that is gone)."""
    total = 0
    for pid in {root, *descendants(root)}:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith("Pss:"))
    return total


def run(
    url: str, base: str, tmp: Path, provider: FakeProvider, command: str, env: dict[str, str], jobs: int
) -> tuple[float, int, float, float]:
    """One candidate: enqueue `jobs` analyses, run a burst worker line, measure: jobs/s, most calls in
    flight, peak PSS in MB, calls in flight per GB."""
    redis = Redis.from_url(url)
    redis.flushdb()
    provider.max_in_flight = 0
    ids = []
    for start in range(0, jobs, 200):
        body = {"jobs": [analyze_body(f"s-{i}") for i in range(start, min(jobs, start + 200))]}
        code, _, answer = http("POST", base + "/api/batches", body)
        assert code == 202, answer
        ids += answer["job_ids"]
    worker = Process(
        "worker",
        {"REDIS_URL": url, "FEYNMAN_LLM_BASE_URL": provider.url, "FEYNMAN_LLM_MODEL": "test-model", **env},
        tmp / f"worker-{time.monotonic_ns()}.log",
        command=f"{command} --burst --url {url}",
    )
    peak = 0
    while worker.proc.poll() is None:
        peak = max(peak, pss_kb(worker.proc.pid))
        time.sleep(0.2)
    worker.stop()
    wait_finished(redis, ids, timeout=60)
    seconds = span(redis, ids)
    redis.close()
    in_flight = provider.max_in_flight
    gb = peak / 1024 / 1024
    return rate(jobs, seconds), in_flight, peak / 1024, in_flight / gb if gb else 0.0


def main() -> None:
    """Run every candidate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=64, help="analysis jobs per concurrent candidate")
    parser.add_argument("--slots", default="8,16,32,64", help="FEYNMAN_WORKER_CONCURRENCY values to try")
    args = parser.parse_args()
    slots = [int(n) for n in args.slots.split(",") if n]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    provider = FakeProvider(server)
    provider.script("", _slow)
    results = []
    with tempfile.TemporaryDirectory() as folder, redis_server(Path(folder) / "redis") as url:
        tmp = Path(folder)
        web, base = start_web(url, tmp / "web.log")
        try:
            for name, command, env, serial in candidates(slots):
                jobs = (
                    max(8, args.jobs // 4)
                    if serial
                    else max(args.jobs, 2 * int(env.get("FEYNMAN_WORKER_CONCURRENCY", "1")))
                )
                results.append((name, jobs, *run(url, base, tmp, provider, command, env, jobs)))
        finally:
            web.stop()
            server.stop()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}; fake provider answers in {CALL_S:g} s")  # fmt: skip
    header = ("candidate", "jobs", "jobs/s", "calls in flight", "PSS MB", "calls/GB", "vs plain")
    print(" | ".join(header))
    print("|".join("---" for _ in header))
    baseline = results[0][5] or 1.0
    for name, jobs, per_s, in_flight, mb, per_gb in results:
        cells = (
            name,
            jobs,
            f"{per_s:.2f}",
            in_flight,
            f"{mb:.0f}",
            f"{per_gb:.0f}",
            f"{per_gb / baseline:.1f}x",
        )
        print(" | ".join(str(cell) for cell in cells))


def _slow(body: dict[str, Any]) -> Response:
    time.sleep(CALL_S)
    return model_answer(body)


if __name__ == "__main__":
    main()
