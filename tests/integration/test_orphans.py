"""Jobs popped by a worker that was lost before it started them go back to their queues whatever the
load: no window of recent jobs is scanned, and jobs the scheduler made are found too."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.processes import schedules
from feynman_jobs.queueing import pending
from feynman_jobs.queueing.wiring import QUEUE_NAMES
from tests.support import Process, enqueue, start_worker, wait_for, wait_until

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


def test_jobs_popped_by_a_lost_worker_go_back_whatever_the_load(
    api: str, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    scheduler = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler.log")
    worker = None
    try:
        from_api = enqueue(api, ROLLUP)["id"]
        made_by_scheduler = (
            schedules.scheduler(redis)
            .enqueue_at(
                datetime.utcnow() - timedelta(seconds=1),
                "feynman_jobs.jobs.rollup.rollup_costs",
                granularity="day",
            )
            .id
        )
        queue_keys = [keys.rq_queue(name) for name in QUEUE_NAMES]
        wait_until(
            lambda: any(redis.lpos(key, made_by_scheduler) is not None for key in queue_keys),
            30,
            "the scheduler to move its job to a queue",
        )
        # Twenty thousand jobs newer than these in the job index.
        redis.zadd(keys.JOBS_INDEX, {f"newer-{n}": 10**9 + n for n in range(20_000)})
        # Two workers on a host that is then lost pop them and never start them.
        popped = [pending.pop(redis, f"lost-{n}", queue_keys, None) for n in range(2)]
        found = [item for item in popped if item is not None]
        assert {job_id for _, job_id in found} == {from_api, made_by_scheduler}
        assert not any(redis.lpos(key, from_api) is not None for key in queue_keys)

        wait_until(
            lambda: all(redis.lpos(key, job_id) is not None for key, job_id in found),
            30,
            "both popped jobs to be back in their queues",
        )
        worker = start_worker(redis_url, tmp_path / "worker.log", redis)
        for job_id in (from_api, made_by_scheduler):
            assert wait_for(api, job_id)["status"] == "finished"
    finally:
        scheduler.stop()
        if worker is not None:
            worker.stop()
