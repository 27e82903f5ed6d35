"""FeynmanWorker with slots: one worker process runs up to FEYNMAN_WORKER_CONCURRENCY jobs at once.

The main thread keeps RQ's loop (pop, claim, heartbeat, maintenance, commands) and pops only when a slot
is free (so a free slot takes the highest-priority job), then runs the job in a thread of its own; each
execution shows in `rq info` and rq-dashboard. Kept from processes/worker.py: recorded pops and claims,
heartbeats of the worker and every execution (an overseer thread), reaped jobs interrupted and not
settled here, a fence that interrupts every job and exits if one stays blocked. Changed (architecture
§1): timeouts and stops interrupt a thread (processes/deadlines.py), so a job blocked in one call ends
when it returns; an interpreter crash takes the neighbours along (the reaper retries them).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rq import Queue, Worker
from rq.command import parse_payload
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.worker import WorkerStatus

from feynman_jobs.errors import ExecutionNotOwned
from feynman_jobs.jobs.context import bind_execution
from feynman_jobs.processes.deadlines import DEADLINES, JobReaped, JobStopRequested, SlotDeathPenalty
from feynman_jobs.processes.horse import Fence
from feynman_jobs.processes.worker import ENDED, FENCE_MARGIN_S, LOST_REDIS, FeynmanWorker
from feynman_jobs.settings import load_settings

#: How often the overseer enforces deadlines and looks for executions due a heartbeat.
OVERSEE_TICK_S = 0.2
#: How long a full worker waits for a slot to free before it heartbeats and looks again.
SLOT_WAIT_S = 1.0


@dataclass
class Slot:
    """One running job: what it runs and when its execution last heartbeat (monotonic)."""

    job: Job
    queue: Queue
    execution: Execution
    beat_at: float = field(default_factory=time.monotonic)


# rq-compat(rq==3.0.0): beyond FeynmanWorker's overrides, also overrides handle_payload, _shutdown,
# teardown, set_state, heartbeat, request_stop_execution and _finalize_failure, and reads _stop_requested
# and _stopped_job_id. Re-run tests/integration/test_slots.py and bin/rq-contract on any rq upgrade.
class SlotWorker(FeynmanWorker):
    """`rq worker` that runs up to `slots` jobs at once in threads (one slot: FeynmanWorker itself)."""

    def __init__(self, *args: Any, slots: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = slots or load_settings(check_prices=False).worker_concurrency
        self._running: dict[str, Slot] = {}
        self._freed = threading.Condition()
        self._stopping: set[str] = set()
        self._settling = threading.RLock()
        self._dequeuing = False
        self._dispatched = 0
        self._overseer: threading.Thread | None = None
        if self.slots > 1:
            self.death_penalty_class = SlotDeathPenalty
            self._fence = Fence(self._fence.limit_s, horse=self._busy_token, kill=self._fence_slots)

    # -- taking jobs ------------------------------------------------------------------------------

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Wait for a free slot, then pop as FeynmanWorker does. In burst mode, empty queues end the
        burst only once every slot is done (a finishing job may enqueue its dependents or a retry)."""
        if self.slots == 1:
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
        self._dequeuing = True
        try:
            while True:
                self._wait_for_slots(self.slots - 1)
                if self._stop_requested:
                    return None
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
                if result is not None or timeout is not None or not self._running:
                    return result
                self._wait_for_slots(len(self._running) - 1)
        finally:
            self._dequeuing = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Claim the job here, in the main thread, then run it in a thread of its own."""
        if self.slots == 1:
            super().execute_job(job, queue)
            return
        try:
            execution = self.prepare_execution(job)
        except ExecutionNotOwned as exc:
            self.log.warning("Worker %s: %s; not starting it", self.name, exc)
            return
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: lost Redis while starting job %s (%s)", self.name, job.id, exc)
            in_hand = self._in_hand if self._in_hand and self._in_hand.job_id == job.id else None
            self._settle_slot(job, queue, in_hand, exc)
            return
        slot = Slot(job, queue, execution)
        with self._freed:
            self._running[execution.id] = slot
            self._dispatched += 1
        self._fence.start()
        self._start_overseer()
        threading.Thread(target=self._run, args=(slot,), name=f"slot-{job.id}", daemon=True).start()

    def _run(self, slot: Slot) -> None:
        job, queue, execution = slot.job, slot.queue, slot.execution
        bind_execution(execution.id)
        try:
            # perform_job returns False after every failure path, including one whose outcome RQ could
            # not write (it logs that and returns): the job would stay `started` under a living
            # worker. A forking worker reads the status after its horse exits; a slot does the same.
            if not self.perform_job(job, queue, execution):
                self._settle_slot(job, queue, execution, RuntimeError("its outcome could not be written"))
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: lost Redis while running job %s (%s)", self.name, job.id, exc)
            self._settle_slot(job, queue, execution, exc)
        except BaseException:  # an interrupt that landed outside perform_job's own handler
            self.log.exception("Worker %s: slot running job %s ended abnormally", self.name, job.id)
            self._settle_slot(job, queue, execution, RuntimeError("its slot ended abnormally"))
        finally:
            bind_execution("")
            DEADLINES.forget(job.id)
            with self._freed:
                self._running.pop(execution.id, None)
                self.executions.pop(execution.id, None)
                self._stopping.discard(job.id)
                self._freed.notify_all()
            if not self._running and self._dequeuing:
                self.set_state(WorkerStatus.IDLE)

    def _wait_for_slots(self, most: int) -> None:
        """Until at most `most` jobs run (or a stop is requested), heartbeating the worker meanwhile."""
        while len(self._running) > most and not self._stop_requested:
            with self._freed:
                self._freed.wait(SLOT_WAIT_S)
            if len(self._running) > most:
                self.heartbeat()

    # -- while jobs run: heartbeats, deadlines, fencing, ownership ---------------------------------

    def _start_overseer(self) -> None:
        if self._overseer is None:
            self._overseer = threading.Thread(target=self._oversee, name="overseer", daemon=True)
            self._overseer.start()

    def _oversee(self) -> None:
        while True:
            time.sleep(OVERSEE_TICK_S)
            for job_id in DEADLINES.enforce():
                self.log.warning("Worker %s: job %s is over its timeout; interrupting it", self.name, job_id)
            now = time.monotonic()
            for slot in list(self._running.values()):
                if now - slot.beat_at >= self.job_monitoring_interval:
                    slot.beat_at = now
                    self._maintain(slot)

    def _maintain(self, slot: Slot) -> None:
        """RQ's heartbeat of one execution (and the worker); interrupt the job if it was reaped."""
        job, execution = slot.job, slot.execution
        sent_at = time.monotonic()
        try:
            Worker.maintain_heartbeats(self, job, execution)
            taken = not self._owns(job, execution) and self.connection.hget(job.key, "status") not in ENDED
        except LOST_REDIS as exc:
            self.log.warning("Worker %s: heartbeat failed (%s)", self.name, exc)
            return  # the fence watches the silence
        self._fence.beat(sent_at)
        if taken:
            self.log.warning("Worker %s: job %s was reaped; interrupting it", self.name, job.id)
            DEADLINES.interrupt(job.id, JobReaped)

    def _busy_token(self) -> int:
        """For the fence: nonzero while jobs run, and a new value for each job dispatched."""
        return self._dispatched if self._running else 0

    def _fence_slots(self) -> None:
        """The fence fired: interrupt every job. One still blocked in a call half the fence's margin
        later would outlive the worker's key, and so run beside its retry: the process exits instead
        (its supervisor restarts it; the reaper retries its jobs)."""
        for slot in list(self._running.values()):
            DEADLINES.interrupt(slot.job.id, JobReaped)
        deadline = time.monotonic() + FENCE_MARGIN_S / 2
        while self._running and time.monotonic() < deadline:
            time.sleep(OVERSEE_TICK_S)
        if self._running:
            self.log.error("Worker %s: jobs still running after the fence; exiting", self.name)
            os._exit(1)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """While jobs run the key lives job_monitoring_interval + 60 s, as with a horse (architecture §5)."""
        busy = self.slots > 1 and self._running and timeout is None
        super().heartbeat(self.job_monitoring_interval + 60 if busy else timeout, pipeline)

    def set_state(self, state: str, pipeline: Any = None) -> None:
        """RQ's state, except that a worker with running jobs stays busy while it waits for more."""
        if state == WorkerStatus.IDLE and self._running:
            state = WorkerStatus.BUSY
        super().set_state(state, pipeline)

    # -- stop of one job, and of the worker --------------------------------------------------------

    def handle_payload(self, message: Any) -> None:
        """RQ's commands; `stop-job` finds the slot running the job (RQ compares one execution only)."""
        payload = parse_payload(message)
        if self.slots > 1 and payload.get("command") == "stop-job":
            job_id = payload.get("job_id")
            found = next((s for s in list(self._running.values()) if s.job.id == job_id), None)
            if found is None:
                self.log.warning("Worker %s: not working on job %s, command ignored", self.name, job_id)
                return
            self.request_stop_execution(found.execution.id)
            return
        super().handle_payload(message)  # type: ignore[no-untyped-call]

    def request_stop_execution(self, execution_id: str) -> None:
        """Stop one running job: interrupt its thread; it ends `stopped`."""
        if self.slots == 1:
            super().request_stop_execution(execution_id)
            return
        slot = self._running.get(execution_id)
        if slot is None:
            self.log.warning("Worker %s: not running execution %s, command ignored", self.name, execution_id)
            return
        self._stopping.add(slot.job.id)
        DEADLINES.interrupt(slot.job.id, JobStopRequested)

    def _finalize_failure(self, job: Job, queue: Queue, execution: Execution, exc_info: Any) -> None:
        """RQ's failure path; a job stopped on request takes the forking worker's stopped path."""
        if job.id in self._stopping:
            self._handle_stopped_job(job, queue, execution)
            return
        super()._finalize_failure(job, queue, execution, exc_info)

    def handle_job_failure(
        self,
        job: Job,
        queue: Queue,
        started_job_registry: Any = None,
        exc_string: str = "",
        execution: Execution | None = None,
    ) -> None:
        """FeynmanWorker's, one slot at a time: RQ tells a stop by the worker-wide `_stopped_job_id`."""
        if self.slots == 1:
            super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
            return
        with self._settling:
            self._stopped_job_id = job.id if job.id in self._stopping else None
            try:
                super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
            finally:
                self._stopped_job_id = None

    def _shutdown(self) -> None:
        """Warm shutdown: take no more jobs; a worker waiting for work stops waiting at once."""
        if self.slots == 1:
            super()._shutdown()  # type: ignore[no-untyped-call]
            return
        self._stop_requested = True
        self.set_shutdown_requested_date()  # type: ignore[no-untyped-call]
        if self.scheduler:
            self.stop_scheduler()  # type: ignore[no-untyped-call]
        if self._dequeuing or not self._running:
            raise StopRequested()

    def teardown(self) -> None:
        """Wait for every running job (the overseer keeps heartbeating), then RQ's teardown."""
        if self.slots > 1:
            while self._running:
                with self._freed:
                    self._freed.wait(SLOT_WAIT_S)
                self.heartbeat()
        super().teardown()  # type: ignore[no-untyped-call]

    def _settle_slot(self, job: Job, queue: Queue, execution: Execution | None, exc: Exception) -> None:
        """Once Redis answers: fail (and so retry) a job still started here, hand back one never started."""
        while True:
            self._wait_for_redis()
            try:
                job.refresh()
                break
            except LOST_REDIS:
                if self._stop_requested:
                    return  # its execution's heartbeats stop with the worker: the reaper settles it
            except Exception:  # gone meanwhile: nothing to settle
                return
        self._settle_refreshed(job, queue, execution, exc)
        if execution is not None:
            self.executions.pop(execution.id, None)
