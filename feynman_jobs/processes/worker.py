"""RQ's forking Worker with two changes, both about not losing jobs.

- A pause holds even a worker that was already waiting for work: RQ checks its suspension only
  between jobs, so an idle worker blocked on its queues takes the next job that arrives while
  paused. This worker hands such a job back, untouched, to the front of its queue.
- Losing Redis while a job runs no longer ends the worker: RQ's worker quits on the first
  connection error outside its dequeue loop, leaving the job `started` for minutes. This worker
  lets the work horse finish, waits for Redis, then settles the job: a job whose end was recorded
  is left alone, a job still `started` goes through RQ's own failure handling (so it is retried by
  its policy), and a job that never started goes back to the front of its queue.

Run it with `rq worker -w feynman_jobs.processes.worker.FeynmanWorker`.
"""

from __future__ import annotations

import contextlib
import os
import time

from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.suspension import is_suspended

LOST_REDIS = (RedisConnectionError, RedisTimeoutError)
MAX_RECONNECT_WAIT_S = 30.0


# rq-compat(rq==3.0.0): overrides dequeue_job_and_maintain_ttl, execute_job, heartbeat,
# check_for_suspension and run_maintenance_tasks, and reads _stop_requested / _horse_pid. Re-run the
# worker tests (tests/integration/test_worker_behaviour.py, tests/reliability) on any rq upgrade.
class FeynmanWorker(Worker):
    """`rq worker`, plus: nothing starts while paused, and a Redis outage mid-job loses nothing."""

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Dequeue as RQ does; a job dequeued during a pause goes back to the front of its queue."""
        while True:
            try:
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
                if result is None or not is_suspended(self.connection, self):
                    return result
            except LOST_REDIS as exc:
                # RQ retries its blocking pop itself, but not the state writes around it.
                self.log.warning("Worker %s: lost Redis while waiting for work (%s)", self.name, exc)
                self._wait_for_redis()
                if self._stop_requested:
                    return None
                continue
            job, queue = result
            self._hand_back(job, queue)
            self.log.info("Worker %s: paused; job %s handed back to %s", self.name, job.id, queue.name)
            self.check_for_suspension(burst=timeout is None)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job in a work horse as RQ does; ride out a Redis outage instead of quitting."""
        try:
            super().execute_job(job, queue)
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: lost Redis while running job %s (%s)", self.name, job.id, exc)
            self._reap_horse()
            self._wait_for_redis()
            self._settle(job, queue, exc)

    # The work loop's own Redis calls between jobs: RQ quits on a connection error in any of them.
    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat; during an outage, wait for Redis instead of quitting."""
        while True:
            try:
                super().heartbeat(timeout, pipeline)
                return
            except LOST_REDIS as exc:
                self.log.warning("Worker %s: heartbeat failed (%s); waiting for Redis", self.name, exc)
                self._wait_for_redis()
                if self._stop_requested:
                    return

    def check_for_suspension(self, burst: bool) -> None:
        """RQ's pause check; during an outage, wait for Redis instead of quitting."""
        while True:
            try:
                super().check_for_suspension(burst)
                return
            except LOST_REDIS:
                self._wait_for_redis()
                if self._stop_requested:
                    return

    def run_maintenance_tasks(self) -> None:
        """RQ's registry upkeep; skipped (not fatal) while Redis is unreachable."""
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: maintenance skipped, Redis unreachable (%s)", self.name, exc)

    def _hand_back(self, job: Job, queue: Queue) -> None:
        with self.connection.pipeline() as pipe:
            # rq-compat(rq==3.0.0): a single-queue worker moved it into RQ's intermediate queue; a
            # multi-queue one popped it. Remove with the whole hand-back once RQ honours a pause mid-wait.
            pipe.lrem(queue.intermediate_queue_key, 1, job.id)
            pipe.lpush(queue.key, job.id)
            pipe.execute()

    def _reap_horse(self) -> None:
        if self.horse_pid:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(self.horse_pid, 0)
            self._horse_pid = 0

    def _wait_for_redis(self) -> None:
        delay = 0.5
        while not self._stop_requested:
            try:
                self.connection.ping()
                self.log.info("Worker %s: Redis is back", self.name)
                return
            except LOST_REDIS:
                time.sleep(delay)
                delay = min(delay * 2, MAX_RECONNECT_WAIT_S)

    def _settle(self, job: Job, queue: Queue, exc: Exception) -> None:
        try:
            job.refresh()
        except NoSuchJobError:
            return
        status = job.get_status(refresh=False)
        if status == JobStatus.STARTED:
            exc_string = f"RedisConnectionLost: the connection to Redis was lost while the job ran ({exc})"
            self.handle_job_failure(job, queue, exc_string=exc_string)
        elif status == JobStatus.QUEUED and job.id not in queue.get_job_ids():
            self._hand_back(job, queue)
        self.heartbeat()
