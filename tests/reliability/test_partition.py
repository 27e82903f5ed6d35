"""A worker on another host is cut off from Redis mid-job: it kills its own work horse before its key
expires, so when the job is given to a worker on this host the first run is already gone."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from redis import Redis
from rq import Retry

from feynman_jobs.queueing.catalog import CALLBACKS
from feynman_jobs.queueing.wiring import get_queue
from tests.support import (
    Process,
    alive,
    other_host,
    procfile_command,
    redis_server,
    start_web,
    start_worker,
    wait_for,
    wait_until,
)


def test_a_worker_cut_off_from_redis_kills_its_horse_before_the_job_runs_elsewhere(tmp_path: Path) -> None:
    with other_host() as host, redis_server(tmp_path / "redis", also_bind=host.gateway) as url:
        client = Redis.from_url(url)
        web, api = start_web(url, tmp_path / "web.log")
        processes = [web, Process("scheduler", {"REDIS_URL": url}, tmp_path / "scheduler.log")]
        try:
            far = f"redis://{host.gateway}:{urlsplit(url).port}/0"
            command = host.command(procfile_command("worker"))
            # One job in a forked horse (FEYNMAN_WORKER_CONCURRENCY=1): the fence kills that horse.
            far_env = {"REDIS_URL": far, "FEYNMAN_WORKER_CONCURRENCY": "1"}
            processes.append(Process("worker", far_env, tmp_path / "far.log", command=command))
            wait_until(lambda: client.scard("rq:workers") == 1, 30, "the other host's worker to register")
            job = get_queue("default", client).enqueue(
                "tests.jobs.count_runs", "runs:cut", 300, retry=Retry(max=1, interval=[1]),
                meta={"max_retries": 1}, on_failure=CALLBACKS.on_failure,
            )  # fmt: skip
            wait_for(api, job.id, ("started",), timeout=60)
            wait_until(lambda: client.exists("runs:cut:pids") == 1, 10, "the job to report its pids")
            horse = int(client.hget("runs:cut:pids", "horse") or 0)
            processes.append(
                start_worker(url, tmp_path / "near.log", client, {"FEYNMAN_WORKER_CONCURRENCY": "1"})
            )

            host.cut()
            cut_at = time.monotonic()
            wait_until(lambda: not alive(horse), 90, "the cut-off worker to kill its horse")
            horse_gone_s = time.monotonic() - cut_at
            wait_until(lambda: client.get("runs:cut") == b"2", 150, "the job to run again on this host")
            print(f"horse killed {horse_gone_s:.1f} s after the cut; rerun {time.monotonic() - cut_at:.1f} s")
            # The second run found the first one's horse dead: never two runs at once.
            assert client.get("runs:cut:overlap") is None
        finally:
            for process in reversed(processes):
                process.stop()
            client.close()
