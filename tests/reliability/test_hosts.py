"""Workers on other hosts: Redis and the scheduler here, the web process and two workers each on a host
of its own (Linux network namespaces joined to this one by veth pairs), one of the workers with its
clock an hour ahead (libfaketime). Jobs sent to the web host run on both worker hosts, and the host
an hour ahead is not judged lost, nor are the other host's jobs judged abandoned by it."""

from __future__ import annotations

import glob
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis

from feynman_jobs import keys, redisio
from tests.support import (
    Process,
    analyze_body,
    can_make_hosts,
    free_port,
    http,
    other_host,
    procfile_command,
    wait_until,
)

#: libfaketime itself: its `faketime` wrapper starts the command in a session of its own, which a
#: stop of the test's process group does not reach (a worker was left running after the test).
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)

pytestmark = pytest.mark.skipif(
    not can_make_hosts() or LIBFAKETIME is None,
    reason="needs root and iproute2 to make network namespaces, and Debian's faketime (bin/test installs it)",
)

TOKEN = "hosts-test-token-0123456789"
JOBS = 24


def test_jobs_from_the_web_host_run_on_two_worker_hosts_one_an_hour_ahead(tmp_path: Path) -> None:
    with other_host() as web_host, other_host() as near, other_host() as ahead:
        port = free_port()
        redis_proc = _redis(tmp_path, port, [web_host.gateway, near.gateway, ahead.gateway])
        processes: list[Process] = []
        try:
            client = Redis(port=port)
            web_port = free_port()
            web_env = {"REDIS_URL": f"redis://{web_host.gateway}:{port}/0", "PORT": str(web_port),
                       "WEB_CONCURRENCY": "1", "FEYNMAN_API_TOKENS": TOKEN}  # fmt: skip
            web_command = web_host.command(procfile_command("web"))
            processes.append(Process("web", web_env, tmp_path / "web.log", command=web_command))
            worker = procfile_command("worker")
            # The host an hour ahead starts first, so its worker takes RQ's scheduler lock.
            ahead_clock = f"exec env LD_PRELOAD={LIBFAKETIME} FAKETIME=+1h "
            for host, name, wrap in ((ahead, "ahead", ahead_clock), (near, "near", "exec ")):
                env = {"REDIS_URL": f"redis://{host.gateway}:{port}/0"}
                command = host.command(f"{wrap}{worker} -n {name}-host")
                processes.append(Process("worker", env, tmp_path / f"{name}.log", command=command))
                wait_until(_registered(client, f"{name}-host"), 60, f"the {name} host's worker")
            here = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
            processes.append(Process("scheduler", here, tmp_path / "scheduler.log"))
            wait_until(lambda: client.scard("rq:workers") == 2, 60, "both worker hosts' workers to register")
            api = f"http://{web_host.address}:{web_port}"
            auth = {"Authorization": f"Bearer {TOKEN}"}
            wait_until(lambda: _answers(api + "/healthz"), 30, "the web host to answer")

            # The worker an hour ahead says so in its heartbeat; the Redis server's clock is the truth.
            skew = _heartbeat(client, "ahead-host") - _heartbeat(client, "near-host")
            assert 3500 < skew < 3700, skew

            started = time.monotonic()
            jobs = [analyze_body(f"h-{n}") for n in range(JOBS)]
            code, _, batch = http("POST", api + "/api/batches", {"jobs": jobs}, auth)
            assert code == 202, batch
            ids = batch["job_ids"]

            def finished() -> bool:
                return all(client.hget(keys.rq_job(job_id), "status") == b"finished" for job_id in ids)

            wait_until(finished, 60, "every job to finish", interval=0.2)
            took = time.monotonic() - started
            by_worker = Counter(
                redisio.text(client.hget(keys.rq_job(job_id), "worker_name")) for job_id in ids
            )
            print(
                f"\nhosts: {JOBS} jobs in {took:.1f} s, by worker host {dict(by_worker)}, skew {skew:.0f} s"
            )
            assert set(by_worker) == {"near-host", "ahead-host"}
            # Nothing was judged abandoned or run twice: one successful attempt each, no failure recorded.
            for job_id in ids:
                document = http("GET", f"{api}/api/jobs/{job_id}", None, auth)[2]
                assert (document["status"], document["attempts"], document["error"]) == ("finished", 1, None)
            # A delayed job waits for its time by the Redis server's clock, whichever host's worker holds
            # RQ's scheduler lock (the host an hour ahead released it at once before).
            code, _, delayed = http("POST", api + "/api/jobs", {**analyze_body("later"), "delay_s": 6}, auth)
            assert code == 202, delayed
            accepted = time.monotonic()
            wait_until(lambda: _status(client, delayed["id"]) == "finished", 30, "the delayed job to run")
            waited = time.monotonic() - accepted
            assert waited > 5, f"a job delayed 6 s ran after {waited:.1f} s"
            # Both hosts are still alive by the Redis server's clock, and neither was reaped.
            assert client.scard("rq:workers") == 2
            assert all(process.proc.poll() is None for process in processes)
        finally:
            for process in reversed(processes):
                process.stop()
            redis_proc.terminate()
            redis_proc.wait(10)


def _redis(tmp: Path, port: int, addresses: list[str]) -> subprocess.Popen[bytes]:
    """redis-server on this host, reachable from each other host's link (and only from them)."""
    binds = " ".join(["127.0.0.1", *addresses])
    with (tmp / "redis.log").open("wb") as log:
        proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", binds,
             "--protected-mode", "no", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until(lambda: _pings(port), 10, "redis-server to start")
    return proc


def _heartbeat(client: Redis, name: str) -> float:
    from feynman_jobs.clock import parse_utc

    raw = client.hget(f"rq:worker:{name}", "last_heartbeat")
    assert raw, name
    return parse_utc(redisio.text(raw)).timestamp()


def _registered(client: Redis, worker: str) -> Callable[[], bool]:
    return lambda: client.exists(f"rq:worker:{worker}") == 1


def _status(client: Redis, job_id: str) -> str:
    return redisio.text(client.hget(keys.rq_job(job_id), "status") or b"")


def _pings(port: int) -> bool:
    try:
        return bool(Redis(port=port, socket_connect_timeout=0.2).ping())
    except Exception:
        return False


def _answers(url: str) -> bool:
    try:
        return http("GET", url)[0] == 200
    except OSError:
        return False
