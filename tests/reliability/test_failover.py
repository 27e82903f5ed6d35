"""A Sentinel failover mid-stream: every key one job, every accepted job finished, 503 never 500.

One deployment for the module's one test: a master and a replica (append-only), three sentinels, the
web process, two workers and the scheduler, all the Procfile's own commands reaching Redis only
through the sentinels. The fake provider counts each job's runs, outside Redis, so a job run again
after the failover is seen even when Redis lost the record of its first run.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import os
import signal
import subprocess
import threading
import time
import urllib.error
from collections import Counter
from collections.abc import Iterator
from http.client import HTTPException
from pathlib import Path
from typing import Any

import pytest

from feynman_jobs import keys
from tests.chat_server import FakeProvider, model_answer
from tests.reliability.sentinels import SentinelSet, wait_for_new_master
from tests.support import VENV_BIN, Process, analyze_body, free_port, http, wait_until

#: Jobs in the stream, and the clients sending them.
JOBS = 90
CLIENTS = 4


class Deployment:
    """The service on a Sentinel set; `close` stops everything it started."""

    def __init__(self, tmp: Path, provider: FakeProvider) -> None:
        self.sentinels = SentinelSet(tmp)
        self.env = self.sentinels.env
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.procs = [
            Process("web", {**self.env, "PORT": str(port), "WEB_CONCURRENCY": "2"}, tmp / "web.log")
        ]
        worker_env = {**self.env, "FEYNMAN_LLM_BASE_URL": provider.url}
        self.workers = [Process("worker", worker_env, tmp / f"worker-{n}.log") for n in range(2)]
        self.scheduler = Process("scheduler", self.env, tmp / "scheduler.log")
        self.procs += [*self.workers, self.scheduler]

    def close(self) -> None:
        for proc in self.procs:
            proc.stop()
        self.sentinels.close()


@pytest.fixture
def deployment(tmp_path: Path, provider: FakeProvider) -> Iterator[Deployment]:
    stack = Deployment(tmp_path, provider)
    try:
        yield stack
    finally:
        stack.close()


def _body(key: str) -> dict[str, Any]:
    body = analyze_body(key)
    body["payload"]["topic"] += f" [{key}]"  # in the prompt: the provider counts runs per key
    return body


class Stream:
    """Clients sending one job per idempotency key, each retrying through 503s until it is accepted."""

    def __init__(self, base: str, count: int) -> None:
        self.base = base
        self.seen: Counter[int] = Counter()
        self.accepted_at: list[float] = []
        self.ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS)
        self._futures = [self._pool.submit(self._send, f"fo-{n:03d}") for n in range(count)]

    def _send(self, key: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                code, _, document = http(
                    "POST", self.base + "/api/jobs", _body(key), {"Idempotency-Key": key}
                )
            except (OSError, urllib.error.URLError, HTTPException):
                code, document = 0, None
            with self._lock:
                self.seen[code] += 1
                if code in (200, 202):
                    self.ids[key] = str(document["id"])
                    self.accepted_at.append(time.monotonic())
                    return
            # 409: a claim of this key reached the replica but its job did not; it lapses (CLAIM_S).
            assert code in (503, 409), f"{key}: {code} {document}"
            assert document["type"].rsplit(":", 1)[-1] in (
                "redis-unavailable", "replication-unconfirmed", "idempotency-key-in-use"
            )  # fmt: skip
            time.sleep(0.05)
        raise AssertionError(f"{key} was never accepted")

    def join(self) -> None:
        for future in self._futures:
            future.result()
        self._pool.shutdown()


@pytest.mark.slow  # about 100 s on 2 cores
def test_a_sentinel_failover_mid_stream_loses_no_accepted_job(
    deployment: Deployment, provider: FakeProvider
) -> None:
    sentinels = deployment.sentinels
    for n in range(JOBS):
        provider.script(f"[fo-{n:03d}]", model_answer)
    old = sentinels.master_port()
    replica = next(port for port in sentinels.ports if port != old)
    master = sentinels.client(old)
    wait_until(lambda: master.scard("rq:workers") == 2, 60, "both workers to register through the sentinels")
    wait_until(lambda: _answers(deployment.base + "/readyz"), 30, "the web process to reach Redis")

    # Accepted means replicated: a 202 is already on the replica; a stalled replica gets a 503 first.
    code, _, document = http(
        "POST", deployment.base + "/api/jobs", _body("first"), {"Idempotency-Key": "first"}
    )
    assert code == 202, document
    assert sentinels.client(replica).exists(keys.rq_job(document["id"])) == 1
    os.kill(sentinels.pid(replica), signal.SIGSTOP)
    try:
        stalled_at = time.monotonic()
        code, headers, problem = http(
            "POST", deployment.base + "/api/jobs", _body("stalled"), {"Idempotency-Key": "stalled"}
        )
        stalled_for = time.monotonic() - stalled_at
    finally:
        os.kill(sentinels.pid(replica), signal.SIGCONT)
    assert (code, problem["type"], headers["Retry-After"]) == (
        503, "urn:feynman-jobs:problem:replication-unconfirmed", "1"
    )  # fmt: skip
    code, _, retried = http(
        "POST", deployment.base + "/api/jobs", _body("stalled"), {"Idempotency-Key": "stalled"}
    )
    assert code in (200, 202), retried
    assert master.zcard(keys.JOBS_INDEX) == 2

    # The stream; the master is SIGKILLed once a third of it is in.
    stream = Stream(deployment.base, JOBS)
    wait_until(lambda: master.zcard(keys.JOBS_INDEX) >= 2 + JOBS // 3, 60, "a third of the stream")
    sentinels.kill(old)
    new, failover_s = wait_for_new_master(sentinels, old)
    stream.join()
    accepted = sorted(stream.accepted_at)
    outage_s = max(later - earlier for earlier, later in itertools.pairwise(accepted))
    assert new == replica

    # Every key is one job, on the new master, and every accepted job finishes there.
    redis = sentinels.client(new)
    ids = sorted(stream.ids.values())
    assert len(set(ids)) == JOBS
    assert redis.zcard(keys.JOBS_INDEX) == JOBS + 2

    def statuses() -> Counter[str]:
        with redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hget(keys.rq_job(job_id), "status")
            return Counter(raw.decode() if raw else "missing" for raw in pipe.execute())

    # A job running when the master died fails and is retried by RQ's scheduler, whose lock from before
    # the failover must lapse first (about a minute, rq 3.0): hence the long wait.
    wait_until(lambda: statuses()["finished"] == JOBS, 90, "every accepted job to finish", interval=0.5)
    runs = [provider.answered[f"[fo-{n:03d}]"] for n in range(JOBS)]
    assert min(runs) >= 1
    ran_twice = sum(1 for count in runs if count > 1)
    assert stream.seen[500] == 0
    assert stream.seen[0] == 0
    assert stream.seen[503] > 0, stream.seen
    print(
        f"\nfailover: jobs accepted {JOBS} (+2), lost 0, ran twice {ran_twice}, "
        f"503s {stream.seen[503]}, 409s {stream.seen[409]}, "
        f"sentinels promoted the replica {failover_s:.1f} s after the kill, "
        f"the longest time without an accepted job {outage_s:.1f} s; "
        f"a stalled replica gave a 503 in {stalled_for:.2f} s"
    )
    # At least once, never lost: only jobs running or popped when the master died may run again.
    assert ran_twice <= 2 * 2

    # Nothing was restarted: workers, scheduler, dashboard and CLI all follow the new master.
    assert all(proc.proc.poll() is None for proc in deployment.procs)
    wait_until(lambda: redis.scard("rq:workers") >= 2, 30, "the workers to heartbeat on the new master")
    # The scheduler's heartbeat sets its key to live 15 s: a longer life set here is cut back only by it.
    for key in redis.scan_iter(match=keys.RQ_SCHEDULER_INSTANCES):
        redis.expire(key, 1000)
    wait_until(
        lambda: any(0 < redis.ttl(key) <= 15 for key in redis.scan_iter(match=keys.RQ_SCHEDULER_INSTANCES)),
        30,
        "the scheduler to heartbeat on the new master",
    )
    code, _, queues = http("GET", deployment.base + "/rq/0/data/queues.json")
    assert code == 200, queues
    assert {queue["name"] for queue in queues["queues"]} >= {"high", "default", "low"}
    # doctor checks the master the sentinels name now, whatever host REDIS_URL names (not a loopback one
    # here: judged by it, this password-less Redis would have been "reached beyond loopback").
    unused = {"REDIS_URL": "redis://redis.invalid:1/0"}
    doctor = subprocess.run(
        [str(VENV_BIN / "feynman-jobs"), "doctor"],
        env={**os.environ, **deployment.env, **unused}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    named = f"master 127.0.0.1:{new} (Sentinel 'feynman')"
    assert f"ok   redis-replication: {named}, 0 replica(s) online" in doctor.stdout, doctor.stdout
    assert f"ok   redis-persistence: {named}: append-only" in doctor.stdout
    assert f"ok   redis-access: {named}: no password, but it listens on loopback only" in doctor.stdout


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False
