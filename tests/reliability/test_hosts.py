"""Workers on other hosts: Redis and the scheduler here, the web process and two workers each on a host
of its own (Linux network namespaces joined to this one by veth pairs), one of the workers with its
clock an hour ahead (libfaketime). Jobs sent to the web host run on both worker hosts, and the host
an hour ahead is not judged lost, nor are the other host's jobs judged abandoned by it, nor are its
retries scheduled an hour late. When the other host is lost, its job runs again on the host an hour
ahead within the abandoned-job bound."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from redis import Redis
from rq import Retry

from feynman_jobs import keys, redisio
from feynman_jobs.clock import server_now
from feynman_jobs.queueing.wiring import fetch_job, get_queue
from tests.reliability.stack import completions
from tests.support import (
    VENV_BIN,
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

pytestmark = [
    pytest.mark.skipif(
        not can_make_hosts() or LIBFAKETIME is None,
        reason="needs root and iproute2 to make network namespaces, and Debian's faketime "
        "(bin/test installs it)",
    ),
    pytest.mark.slow,  # about 85 s, most of it waiting for a lost host's key to expire
]

TOKEN = "hosts-test-token-0123456789"
JOBS = 24
#: The knobs a deployer may shorten (architecture §5), as this test's processes get them: a busy worker
#: heartbeats every `--job-monitoring-interval` s and its key lives that + 60 s after each heartbeat
#: (RQ's rule); the scheduler's reaper runs every `--interval` s. The Procfile's 10 and 5 make 75 s.
MONITORING_S = 1
SCHEDULER_S = 1
#: A lost host's job starts again within its worker key's TTL and one reaper tick (the documented
#: bound), and a moment for an idle worker to take it (it looks at `default` every 0.5 s) and fork.
REAP_BOUND_S = MONITORING_S + 60 + SCHEDULER_S + 3
#: Jobs each worker host runs at once (FEYNMAN_WORKER_CONCURRENCY).
SLOTS = 2
#: A retry's backoff on the host an hour ahead (scheduled by that host, moved by its scheduler).
RETRY_S = 3


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
            worker = _with(procfile_command("worker"), "--job-monitoring-interval", 10, MONITORING_S)
            # The host an hour ahead starts first, so its worker takes RQ's scheduler lock.
            ahead_clock = f"exec env LD_PRELOAD={LIBFAKETIME} FAKETIME=+1h "
            for host, name, wrap in ((ahead, "ahead", ahead_clock), (near, "near", "exec ")):
                # Two slots a host, so that four held jobs hold both hosts whatever the order they are taken.
                env = {
                    "REDIS_URL": f"redis://{host.gateway}:{port}/0",
                    "FEYNMAN_WORKER_CONCURRENCY": str(SLOTS),
                }
                command = host.command(f"{wrap}{worker} -n {name}-host")
                processes.append(Process("worker", env, tmp_path / f"{name}.log", command=command))
                wait_until(_registered(client, f"{name}-host"), 60, f"the {name} host's worker")
            here = {"REDIS_URL": f"redis://127.0.0.1:{port}/0"}
            scheduler = _with(procfile_command("scheduler"), "--interval", 5, SCHEDULER_S)
            processes.append(Process("scheduler", here, tmp_path / "scheduler.log", command=scheduler))
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

            # Held jobs fill every slot of both worker hosts; then the host without the skew is lost (its
            # worker process, which runs its jobs in threads, SIGKILLed by pid: a namespace is not a pid
            # namespace).
            queue = get_queue("default", client)
            held = {
                key: queue.enqueue("tests.jobs.count_and_hold", key, retry=Retry(max=1))
                for key in (f"hold:{n}" for n in range(2 * SLOTS))
            }
            wait_until(lambda: all(client.exists(f"{key}:pids") for key in held), 30, "every held job")
            hosts = {key: _worker(client, job.id) for key, job in held.items()}
            lost_keys = sorted(key for key, host in hosts.items() if host == "near-host")
            kept_keys = sorted(key for key, host in hosts.items() if host == "ahead-host")
            assert (len(lost_keys), len(kept_keys)) == (SLOTS, SLOTS), hosts
            worker_pid = int(client.hget(keys.rq_worker("near-host"), "pid") or 0)
            assert {int(client.hget(f"{key}:pids", "runner") or 0) for key in lost_keys} == {worker_pid}
            os.kill(worker_pid, signal.SIGKILL)
            lost_at = time.monotonic()
            for key in kept_keys:  # the host an hour ahead finishes its jobs
                client.rpush(f"{key}:release", 1)

            # While the lost host's key lives on: a retry on the host an hour ahead waits its backoff by
            # the Redis server's clock (that host's clock scheduled it 3,600 s late before JsonJob.retry).
            wait_until(
                lambda: all(_status(client, held[key].id) == "finished" for key in kept_keys),
                10,
                "the kept jobs",
            )
            backoff = Retry(max=1, interval=[RETRY_S])
            retried = queue.enqueue("tests.jobs.fail_first_time", "retry:ahead", retry=backoff)
            wait_until(lambda: _status(client, retried.id) == "scheduled", 10, "the first attempt to fail")
            failed_at = time.monotonic()
            due = client.zscore(keys.rq_registry("scheduled", "default"), retried.id) or 0.0
            scheduled_in = due - server_now(client).timestamp()
            print(f"hosts: retry on the host an hour ahead scheduled {scheduled_in:.1f} s ahead by Redis")
            wait_until(lambda: _status(client, retried.id) == "finished", 15, "the retry to run")
            retry_s = time.monotonic() - failed_at
            print(f"hosts: retry ({RETRY_S} s backoff) ran again after {retry_s:.1f} s")
            assert _worker(client, retried.id) == "ahead-host"
            assert RETRY_S - 1.5 < scheduled_in <= RETRY_S + 0.5, scheduled_in
            assert RETRY_S - 1.5 < retry_s < RETRY_S + 5, retry_s

            # A delayed job waits for its time by the Redis server's clock, whichever host's worker holds
            # RQ's scheduler lock (the host an hour ahead released it at once before).
            code, _, delayed = http("POST", api + "/api/jobs", {**analyze_body("later"), "delay_s": 6}, auth)
            assert code == 202, delayed
            accepted = time.monotonic()
            wait_until(lambda: _status(client, delayed["id"]) == "finished", 30, "the delayed job to run")
            waited = time.monotonic() - accepted
            assert waited > 5, f"a job delayed 6 s ran after {waited:.1f} s"

            # doctor judges life by the worker's key, and names the host whose clock is off.
            doctor = subprocess.run(
                [str(VENV_BIN / "feynman-jobs"), "doctor"], env={**os.environ, **here},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            [off] = [line for line in doctor.stdout.splitlines() if "Redis server's clock" in line]
            assert off.startswith("WARN workers: ahead-host: its last heartbeat is 3"), doctor.stdout
            assert "ahead of the Redis server's clock" in off

            # The lost host's jobs run again on the other host within the bound, and each finishes once.
            wait_until(
                lambda: all(client.get(key) == b"2" for key in lost_keys),
                REAP_BOUND_S + 15,
                "the lost jobs to rerun",
            )
            rerun_s = time.monotonic() - lost_at
            lost = [held[key].id for key in lost_keys]
            wait_until(
                lambda: all(_status(client, job_id) == "finished" for job_id in lost), 10, "the lost jobs"
            )
            print(f"hosts: the lost host's jobs ran again on the other host {rerun_s:.1f} s after the kill")
            assert rerun_s < REAP_BOUND_S, rerun_s
            assert {_worker(client, job_id) for job_id in lost} == {"ahead-host"}
            assert completions(client, lost) == {job_id: 1 for job_id in lost}
            for job_id in lost:
                errors = fetch_job(job_id, client).meta["attempt_errors"]
                assert [error["type"] for error in errors] == ["AbandonedJobError"]
            # The host an hour ahead is alive by the Redis server's clock, and was never reaped.
            assert client.exists(keys.rq_worker("ahead-host")) == 1
            assert client.exists(keys.rq_worker("near-host")) == 0
            ahead_worker = processes[1]
            assert ahead_worker.proc.poll() is None
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


def _with(command: str, option: str, procfile_value: int, value: int) -> str:
    """The Procfile line with one option's value changed, as a deployer would."""
    assert f"{option} {procfile_value}" in command, command
    return command.replace(f"{option} {procfile_value}", f"{option} {value}")


def _worker(client: Redis, job_id: str) -> str:
    return redisio.text(client.hget(keys.rq_job(job_id), "worker_name") or b"")


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
