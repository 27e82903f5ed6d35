"""A whole deployment on loopback for fault tests: a restartable Redis (append-only), gunicorn,
rq workers and the scheduler, each the Procfile's own command."""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import signal
import subprocess
import time
import urllib.error
from collections import Counter
from http.client import HTTPException
from pathlib import Path
from typing import Any

from redis import Redis

from feynman_jobs.lifecycle import outcomes
from tests.support import Process, free_port, http, wait_until


class Stack:
    """Redis, web, workers and scheduler for one test; every piece can be killed and started again."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis_port = free_port()
        self.url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.web_port = free_port()
        self.base = f"http://127.0.0.1:{self.web_port}"
        self._redis_proc: subprocess.Popen[bytes] | None = None
        self.web: Process | None = None
        self.workers: list[Process] = []
        self.scheduler: Process | None = None
        (tmp / "redis").mkdir(parents=True, exist_ok=True)
        self.start_redis()
        self.client = Redis.from_url(self.url)

    def start_redis(self) -> None:
        """redis-server with append-only persistence, fsynced on every write."""
        binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "redis-server"
        log = (self.tmp / "redis.log").open("ab")
        self._redis_proc = subprocess.Popen(
            [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--dir", str(self.tmp / "redis"),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        wait_until(self._redis_up, 10, "redis-server to start")

    def _redis_up(self) -> bool:
        try:
            return bool(Redis(port=self.redis_port, socket_connect_timeout=0.2).ping())
        except Exception:
            return False

    def stop_redis(self) -> None:
        """A clean Redis shutdown (SIGTERM): what a restart by an operator or a platform does."""
        assert self._redis_proc is not None
        self._redis_proc.terminate()
        self._redis_proc.wait(10)

    def start_web(self) -> None:
        """The Procfile's web process on this stack's port."""
        env = {"REDIS_URL": self.url, "PORT": str(self.web_port), "WEB_CONCURRENCY": "2"}
        self.web = Process("web", env, self.tmp / f"web-{time.monotonic_ns()}.log")
        wait_until(lambda: _answers(self.base + "/healthz"), 30, "gunicorn to start")

    def add_worker(self, env: dict[str, str] | None = None) -> Process:
        """One more Procfile worker (with extra environment, e.g. an LLM endpoint)."""
        log = self.tmp / f"worker-{len(self.workers)}.log"
        worker = Process("worker", {"REDIS_URL": self.url, **(env or {})}, log)
        self.workers.append(worker)
        return worker

    def worker_pid(self, name: str) -> int:
        """The pid of the worker parent registered under `name`."""
        return int(self.client.hget(f"rq:worker:{name}", "pid") or 0)

    def start_scheduler(self) -> None:
        """The Procfile's scheduler process."""
        self.scheduler = Process("scheduler", {"REDIS_URL": self.url}, self.tmp / "scheduler.log")

    def close(self) -> None:
        """Stop everything this stack started."""
        for proc in [*self.workers, self.scheduler, self.web]:
            if proc is not None:
                proc.stop()
        self.client.close()
        if self._redis_proc and self._redis_proc.poll() is None:
            self._redis_proc.terminate()
            self._redis_proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False


def submit_until_accepted(
    base: str, body: dict[str, Any], key: str, seen: Counter[int], deadline: float
) -> str:
    """POST one job with an idempotency key, retrying through 503s and refused connections."""
    while time.monotonic() < deadline:
        try:
            code, _, document = http("POST", base + "/api/jobs", body, {"Idempotency-Key": key})
        except (OSError, urllib.error.URLError, HTTPException):
            # Refused, reset, or cut off mid-answer (IncompleteRead) by a web process being killed.
            seen[0] += 1
            time.sleep(0.05)
            continue
        seen[code] += 1
        if code in (200, 202):
            return str(document["id"])
        assert code in (503, 409), f"unexpected {code}: {document}"
        time.sleep(0.05)
    raise AssertionError(f"job {key} not accepted before the deadline")


def load(
    base: str, count: int, clients: int, body: dict[str, Any], deadline_s: float = 300
) -> tuple[list[str], Counter[int]]:
    """`count` jobs from `clients` concurrent clients; returns the accepted ids and the status codes seen."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + deadline_s
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        futures = [
            pool.submit(submit_until_accepted, base, body, f"load-{n}", seen, deadline) for n in range(count)
        ]
        ids = [future.result() for future in futures]
    return ids, seen


def executions(client: Redis) -> Counter[str]:
    """How many times each job's function returned, counted in its work horse right after it did."""
    return Counter(
        event["job_id"] for event in outcomes.events_since(client, 0) if event["outcome"] == "finished"
    )


def completions(client: Redis, ids: list[str]) -> Counter[str]:
    """How many successful results RQ recorded for each job (its own record of completion)."""
    with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.xrange(f"rq:results:{job_id}")
        streams = pipe.execute()
    return Counter(
        {
            job_id: sum(1 for _, fields in stream if fields.get(b"type") == b"1")
            for job_id, stream in zip(ids, streams, strict=True)
        }
    )


def wait_all_finished(client: Redis, ids: list[str], timeout: float) -> Counter[str]:
    """Wait until every id has finished at least once; returns the execution counts."""
    wanted = set(ids)
    counts: Counter[str] = Counter()

    def done() -> bool:
        counts.clear()
        counts.update(executions(client))
        return wanted <= set(counts)

    try:
        wait_until(done, timeout, f"{len(ids)} jobs to finish", interval=0.5)
    except AssertionError as exc:
        missing = sorted(wanted - set(counts))
        shown = {
            job_id: client.hmget(f"rq:job:{job_id}", "status", "origin", "worker_name")
            for job_id in missing[:5]
        }
        raise AssertionError(f"{exc}; {len(missing)} never finished, e.g. {shown}") from None
    return counts


def sigkill(pid: int) -> None:
    """Kill one process at once."""
    os.kill(pid, signal.SIGKILL)
