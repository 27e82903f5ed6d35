"""RQ's forking Worker, changed so that a job is never lost and never runs twice at once.

- Pops are recorded: a job taken from a queue sits in this worker's `popped` list until it starts
  (queueing/pending.py), so a worker lost between pop and start loses nothing.
- A job starts only if it is still this worker's (`claim`, atomic with marking it started); a worker
  settles (fails, retries, hands back) only executions it still owns.
- The work horse dies with its parent (processes/horse.py); the worker heartbeats through outages,
  and kills its horse when it could not heartbeat for nearly its key's TTL or the reaper took its
  job: by the time anyone may judge the job abandoned, its horse is gone (architecture §5).
- A pause is looked for in the pop's own atomic step, so it holds even a worker already waiting for
  work; losing Redis no longer ends the worker: it waits for Redis, then settles what it was doing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, Worker, worker_registration
from rq.exceptions import NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus
from rq.utils import now, utcformat
from rq.worker import WorkerStatus
from rq.worker.base import SHUTDOWN_SIGNAL

from feynman_jobs.errors import ExecutionNotOwned, WorkersPaused, WorkHorseKilled
from feynman_jobs.lifecycle import recovery, timeline
from feynman_jobs.lifecycle.outcomes import record_attempt_error
from feynman_jobs.processes.horse import Fence, die_with_parent, kill_fresh_horse
from feynman_jobs.processes.popping import PoppingQueue
from feynman_jobs.processes.scheduling import ServerClockScheduling
from feynman_jobs.queueing import pending

LOST_REDIS = (RedisConnectionError, RedisTimeoutError)
MAX_RECONNECT_WAIT_S = 5.0
#: A busy worker's key lives `job_monitoring_interval + 60` s after its last heartbeat (RQ's rule); the
#: fence kills its horse this long before that (checked every second), never under a living horse.
FENCE_MARGIN_S = 20.0
#: Job statuses (as stored) after which a horse is only finishing up.
ENDED = {b"finished", b"failed", b"stopped", b"canceled"}


# rq-compat(rq==3.0.0): overrides dequeue_job_and_maintain_ttl, prepare_execution, fork_work_horse,
# main_work_horse, maintain_heartbeats, heartbeat, handle_job_failure, handle_work_horse_killed, execute_job,
# check_for_suspension, run_maintenance_tasks and clean_registries; reads _stop_requested, _stopped_job_id
# and _horse_pid. Re-run tests/integration/test_worker_behaviour.py and tests/reliability on any upgrade.
class FeynmanWorker(ServerClockScheduling, Worker):
    """`rq worker`, plus: pops are recorded, horses die with their worker, nothing runs twice at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        popping: type[PoppingQueue] = type(
            "PoppingQueue", (PoppingQueue, self.queue_class), {"worker_name": self.name}
        )
        self.queue_class = self._popping = popping
        self._parent_pid = os.getpid()
        fence_after = self.job_monitoring_interval + 60 - FENCE_MARGIN_S
        self._fence = Fence(fence_after, horse=lambda: self.horse_pid, kill=self.kill_horse)
        #: The execution of the job in hand. RQ forgets it as soon as the horse exits, before it reads
        #: the job's status: an outage right then would leave the job started with nobody settling it.
        self._in_hand: Execution | None = None

    # -- taking a job ----------------------------------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Dequeue as RQ does; while workers are paused, the pop takes nothing and the worker waits."""
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except WorkersPaused:  # found by the pop's own atomic step (queueing/pending.pop)
                self._wait_while_paused(burst=timeout is None)
            except LOST_REDIS as exc:
                # RQ retries its blocking pop itself, but not the state writes around it.
                self.log.warning("Worker %s: lost Redis while waiting for work (%s)", self.name, exc)
                self._wait_for_redis()
            except Exception as exc:
                # A job whose data cannot be read: RQ quits; it must not come back to the next worker.
                unreadable = getattr(exc, "job_id", None)
                if unreadable:
                    pending.drop(self.connection, self.name, unreadable)
                raise
            if self._stop_requested:
                return None

    def prepare_execution(self, job: Job) -> Execution:
        """RQ's execution record, then the claim: the job starts only if it is still this worker's."""
        execution = super().prepare_execution(job)
        self._in_hand = execution
        claimed = pending.claim(self.connection, self.name, job.id, utcformat(now()))
        self._popping.emptied()  # either way the job is out of the popped list
        if claimed:
            return execution
        with self.connection.pipeline() as pipe:
            execution.delete(job=job, pipeline=pipe)
            pipe.execute()
        self.executions.pop(execution.id, None)
        raise ExecutionNotOwned(f"job {job.id} was canceled or taken back before it started")

    def fork_work_horse(self, job: Job, queue: Queue) -> None:
        """Fork as RQ does; the horse learns its execution id and dies with this process."""
        execution = next(iter(self.executions.values()), None)
        # rq-compat(rq==3.0.0): RQ_EXECUTION_ID is the variable RQ's SpawnWorker gives its horse; the
        # forking worker does not set it. Jobs tag their model-call reservations with it.
        os.environ["RQ_EXECUTION_ID"] = execution.id if execution else ""
        self._parent_pid = os.getpid()
        self._fence.start()
        super().fork_work_horse(job, queue)
        if self._stopped_job_id == job.id:  # a stop that arrived before there was a horse to kill
            self.kill_horse()

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """The horse's entry point: first make sure it cannot outlive its parent."""
        die_with_parent(self._parent_pid)
        super().main_work_horse(job, queue)

    def kill_horse(self, sig: signal.Signals = SHUTDOWN_SIGNAL) -> None:
        """RQ's kill of the horse's process group, made safe right around the fork."""
        # rq-compat(rq==3.0.0): RQ kills os.getpgid(horse): with no horse yet that is this worker's own
        # group, and so it is while a new horse has not yet called setpgrp(). Remove when RQ kills by pid.
        if self.horse_pid and not kill_fresh_horse(self.horse_pid, sig):
            super().kill_horse(sig)

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job in a work horse as RQ does; ride out a Redis outage instead of quitting."""
        try:
            super().execute_job(job, queue)
        except ExecutionNotOwned as exc:
            self.log.warning("Worker %s: %s; not starting it", self.name, exc)
            self.set_state(WorkerStatus.IDLE)
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: lost Redis while running job %s (%s)", self.name, job.id, exc)
            self._wait_for_horse()
            self._wait_for_redis()
            self._settle(job, queue, exc)

    # -- heartbeats, fencing and ownership -------------------------------------------------------

    def maintain_heartbeats(self, job: Job, execution: Execution) -> None:
        """RQ's heartbeat while a horse runs, kept up through outages; fence the horse if it must."""
        sent_at = time.monotonic()
        try:
            super().maintain_heartbeats(job, execution)
            # Out of the started registry yet not ended: the reaper gave the job to someone else.
            taken = not self._owns(job, execution) and self.connection.hget(job.key, "status") not in ENDED
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: heartbeat failed (%s)", self.name, exc)
            return  # tried again at the next interval; the fence watches the silence
        self._fence.beat(sent_at)
        if taken:
            self.log.warning("Worker %s: job %s was reaped; killing its horse", self.name, job.id)
            self.kill_horse()

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, its three writes in one round trip; waits out an outage instead of quitting."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        while True:
            sent_at = time.monotonic()
            try:
                with self.connection.pipeline(transaction=False) as pipe:
                    super().heartbeat(timeout, pipe)
                    pipe.execute()
                self._fence.beat(sent_at)
                return
            except LOST_REDIS as exc:
                self.log.warning("Worker %s: heartbeat failed (%s); waiting for Redis", self.name, exc)
                if self.horse_pid:  # never block while a horse runs: the monitor loop retries
                    return
                self._wait_for_redis()
                if self._stop_requested:
                    return

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        """RQ's failure handling, for executions this worker still owns only."""
        if not self.is_horse and execution is not None and not self._owns(job, execution):
            self.log.warning("Worker %s: job %s is no longer ours; leaving it alone", self.name, job.id)
            self.executions.pop(execution.id, None)
            return
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)

    def handle_work_horse_killed(self, job: Job, retpid: Any, ret_val: Any, rusage: Any) -> None:
        """RQ's hook, before it retries or fails the job: remember why this attempt ended."""
        super().handle_work_horse_killed(job, retpid, ret_val, rusage)  # type: ignore[no-untyped-call]
        how = f"signal {os.WTERMSIG(ret_val)}" if ret_val and os.WIFSIGNALED(ret_val) else f"status {ret_val}"
        error = WorkHorseKilled(f"the work horse running the job died ({how}): killed, or out of memory")
        timeline.reread_start(self.connection, job)  # the horse's start, for the timeline
        record_attempt_error(job, WorkHorseKilled, error, None)

    def _owns(self, job: Job, execution: Execution) -> bool:
        started = job.started_job_registry
        return self.connection.zscore(started.key, execution.composite_key) is not None

    # -- the work loop's own Redis calls between jobs ------------------------------------------

    def check_for_suspension(self, burst: bool) -> None:
        """Nothing: the pop itself looks for a pause, atomically, and waits out one it finds."""
        # rq-compat(rq==3.0.0): RQ calls it only before a pop, right after a heartbeat (or its birth).

    def _wait_while_paused(self, burst: bool) -> None:
        """RQ's pause check (wait, or end a burst); during an outage, wait for Redis, not quit."""
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

    def clean_registries(self) -> None:
        """RQ's registry upkeep without its started-registry sweep, which compares two hosts' clocks:
        abandoned jobs are the scheduler's, judged by the Redis server's clock (lifecycle/recovery)."""
        for queue in self.queues:
            if queue.acquire_maintenance_lock():
                recovery.clean_queue_registries(queue)
                worker_registration.clean_worker_registry(queue)
                queue.release_maintenance_lock()
        self.last_cleaned_at = now()  # type: ignore[assignment]

    # -- after an outage ---------------------------------------------------------------------

    def _wait_for_horse(self) -> None:
        """Wait for a horse still running, heartbeating (and fencing) as the monitor loop would."""
        while self.horse_pid:
            with contextlib.suppress(ChildProcessError, OSError):
                pid, _ = os.waitpid(self.horse_pid, os.WNOHANG)
                if pid == 0:
                    sent_at = time.monotonic()
                    with contextlib.suppress(*LOST_REDIS):
                        super().heartbeat(self.job_monitoring_interval + 60)
                        self._fence.beat(sent_at)
                    time.sleep(1.0)
                    continue
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
        """Once Redis is back: fail (and so retry) a job still started here, hand back one never started."""
        execution = next(iter(self.executions.values()), None)
        if execution is None and self._in_hand is not None and self._in_hand.job_id == job.id:
            execution = self._in_hand
        try:
            job.refresh()
        except NoSuchJobError:
            self.executions.clear()
            return
        self._settle_refreshed(job, queue, execution, exc)
        self.executions.clear()
        self._in_hand = None
        self.set_state(WorkerStatus.IDLE)
        self.heartbeat()

    def _settle_refreshed(self, job: Job, queue: Queue, execution: Execution | None, exc: Exception) -> None:
        """`_settle`'s rule for a job just read again (slots share it)."""
        status = job.get_status(refresh=False)
        if status == JobStatus.STARTED and execution is not None:
            exc_string = f"RedisConnectionLost: the connection to Redis was lost while the job ran ({exc})"
            self.handle_job_failure(job, queue, exc_string=exc_string, execution=execution)
            pending.drop(self.connection, self.name, job.id)  # if the outage came before the claim's reply
        elif status == JobStatus.QUEUED:
            pending.hand_back(self.connection, self.name, job.id, queue.key)
            if execution is not None:
                with self.connection.pipeline() as pipe:
                    execution.delete(job=job, pipeline=pipe)
                    pipe.execute()
