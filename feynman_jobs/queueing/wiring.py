"""RQ wiring shared by every process: queue names, the JSON job and queue classes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal, get_args

import rq.job
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from feynman_jobs.clock import server_now

#: A queue's name, as requests and the OpenAPI document spell it.
QueueName = Literal["high", "default", "low"]
#: Queue names in priority order: a worker always takes `high` first.
QUEUE_NAMES: tuple[str, ...] = get_args(QueueName)
#: What an RQ job id may look like (RQ's own rule); ids the service makes use `-`, never `:`.
JOB_ID_PATTERN = r"[A-Za-z0-9_-]{1,128}"


class JsonJob(Job):
    """An RQ job that (de)serializes with JSON unless told otherwise: never executable data from Redis."""

    def __init__(
        self, id: str | None = None, connection: Redis | None = None, serializer: Any = None
    ) -> None:
        json = serializer is None or serializer is JSONSerializer
        super().__init__(id, connection=connection, serializer=None if json else serializer)
        if json:
            # rq-compat(rq==3.0.0, CPython 3.11): Job.__init__ checks its serializer with isinstance on
            # a runtime Protocol, which walks the Protocol's attributes on every call in 3.11: 20 µs of
            # a job object's 26 µs here, 4 ms of a batch of 200. RQ accepts JSONSerializer; None above
            # skips the check. Remove on CPython 3.12+, which caches the Protocol's attributes.
            self.serializer = JSONSerializer

    # rq-compat(rq==3.0.0): Job.retry (a failed attempt's backoff) and Job._handle_retry_result (a
    # job returning Retry: our holds) schedule the job at `rq.job.now()` + interval, the clock of the
    # host that failed or held it; a worker host an hour ahead scheduled its retries an hour late
    # (tests/reliability/test_hosts.py). They run here on the Redis server's clock, the one the
    # scheduler compares against (processes/scheduling.py). Remove when RQ asks Redis for the time.
    def retry(self, queue: Queue, pipeline: Any) -> None:
        """RQ's retry of a failed attempt, its backoff counted from the Redis server's clock."""
        with _server_clock(self.connection):
            super().retry(queue, pipeline)

    def _handle_retry_result(self, *args: Any, **kwargs: Any) -> None:
        """RQ's reschedule of a job that returned Retry, counted from the Redis server's clock."""
        with _server_clock(self.connection):
            super()._handle_retry_result(*args, **kwargs)


@contextlib.contextmanager
def _server_clock(connection: Redis) -> Iterator[None]:
    """`rq.job.now` reads the Redis server's clock while the block runs (RQ's retry paths run in a
    worker's main thread or its single-threaded horse, or in the scheduler process)."""
    module: Any = rq.job
    own = module.now
    moment = server_now(connection)
    module.now = lambda: moment
    try:
        yield
    finally:
        module.now = own


class JsonQueue(Queue):
    """An RQ queue of JsonJob; what rq-scheduler builds when it moves a periodic job to its queue."""

    job_class = JsonJob

    def __init__(self, name: str = "default", connection: Redis | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JSONSerializer)
        kwargs.setdefault("job_class", JsonJob)
        super().__init__(name, connection=connection, **kwargs)


def get_queue(name: str, connection: Redis) -> JsonQueue:
    """The RQ queue `name`, JSON-serialized."""
    return JsonQueue(name, connection=connection)


def fetch_job(job_id: str, connection: Redis) -> JsonJob:
    """Fetch a job by id (raises rq.exceptions.NoSuchJobError)."""
    job = JsonJob.fetch(job_id, connection=connection, serializer=JSONSerializer)
    assert isinstance(job, JsonJob)
    return job
