"""RQ's forking Worker with one change: a pause holds even a worker that was already waiting for work.

RQ checks its suspension only between jobs; an idle worker blocked on its queues takes the next job
that arrives even while paused. This worker hands such a job back, untouched, to the front of its
queue and waits for the resume. Run it with `rq worker -w feynman_jobs.worker.FeynmanWorker`.
"""

from __future__ import annotations

from rq import Queue, Worker
from rq.job import Job
from rq.suspension import is_suspended


class FeynmanWorker(Worker):
    """`rq worker`, plus: nothing starts while the queues are paused."""

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> tuple[Job, Queue] | None:
        """Dequeue as RQ does; a job dequeued during a pause goes back to the front of its queue."""
        while True:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            if result is None or not is_suspended(self.connection, self):
                return result
            job, queue = result
            with self.connection.pipeline() as pipe:
                # A single-queue worker moved it into RQ's intermediate queue; a multi-queue one popped it.
                pipe.lrem(queue.intermediate_queue_key, 1, job.id)
                pipe.lpush(queue.key, job.id)
                pipe.execute()
            self.log.info("Worker %s: paused; job %s handed back to %s", self.name, job.id, queue.name)
            self.check_for_suspension(burst=timeout is None)
