"""The queue class a FeynmanWorker pops through: every pop is recorded in the worker's popped list."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue
from rq.exceptions import DequeueTimeout

from feynman_jobs.errors import WorkersPaused
from feynman_jobs.queueing import pending


class PoppingQueue(Queue):
    """Queue pops that move the job id into the popping worker's `popped` list in the same step."""

    worker_name = ""
    #: True while the popping worker knows its popped list is empty (queueing/pending.pop).
    popped_empty = False

    # rq-compat(rq==3.0.0): Queue.dequeue_any pops through the classmethods lpop (several queues) and
    # lmove (one queue, into RQ's intermediate list). Remove when RQ records multi-queue pops itself.
    @classmethod
    def lpop(
        cls, queue_keys: Sequence[str], timeout: int | None, connection: Redis | None = None
    ) -> tuple[str, str] | None:
        """Pop as RQ does (DequeueTimeout when a blocking pop finds nothing), recording the pop; raises
        WorkersPaused while workers are paused."""
        assert connection is not None
        # Unknown again until this pop's reply is in: a lost reply may have left a job in the list.
        known_empty, cls.popped_empty = cls.popped_empty, False
        try:
            found = pending.pop(connection, cls.worker_name, [*queue_keys], timeout, known_empty=known_empty)
        except WorkersPaused:
            cls.popped_empty = True  # a paused pop takes nothing, and puts back what it finds
            raise
        cls.popped_empty = found is None
        if found is None and timeout is not None:
            raise DequeueTimeout(timeout, queue_keys)
        return found

    @classmethod
    def emptied(cls) -> None:
        """The worker had the reply of a claim, hand-back or drop of the job its last pop took."""
        cls.popped_empty = True

    @classmethod
    def lmove(cls, connection: Redis, queue_key: str, timeout: int | None) -> tuple[str, str] | None:
        """A single-queue pop, recorded the same way (instead of RQ's intermediate list)."""
        return cls.lpop([queue_key], timeout, connection=connection)
