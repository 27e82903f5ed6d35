"""RQ wiring shared by every process: queue names, the JSON job and queue classes."""

from __future__ import annotations

from typing import Any, Literal, get_args

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

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
        super().__init__(id, connection=connection, serializer=serializer or JSONSerializer)


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
