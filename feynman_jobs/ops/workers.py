"""Live workers as operators see them over HTTP: host, pid, queues, state, current job, heartbeat."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from redis import Redis
from rq.serializers import JSONSerializer
from rq.worker import Worker

from feynman_jobs.queueing.wiring import JsonJob, JsonQueue


class WorkerInfo(BaseModel):
    """One live RQ worker (its `rq:worker:<name>` key exists)."""

    name: str
    hostname: str | None
    pid: int | None
    queues: list[str]
    #: RQ's words: `idle`, `busy`, `started`, `suspended` …
    state: str
    current_job_id: str | None
    last_heartbeat: datetime | None
    birth_date: datetime | None
    successful_jobs: int
    failed_jobs: int


class WorkersDocument(BaseModel):
    """Every live worker, sorted by name."""

    workers: list[WorkerInfo]


def list_workers(connection: Redis) -> WorkersDocument:
    """Every worker registered in Redis, read through RQ (JSON serializer: nothing else is deserialized)."""
    found = Worker.all(
        connection=connection, job_class=JsonJob, queue_class=JsonQueue, serializer=JSONSerializer
    )
    infos = [
        WorkerInfo(
            name=worker.name,
            hostname=worker.hostname,
            pid=worker.pid,
            queues=worker.queue_names(),
            state=str(worker.get_state()),
            current_job_id=worker.get_current_job_id(),
            last_heartbeat=worker.last_heartbeat,
            birth_date=worker.birth_date,
            successful_jobs=worker.successful_job_count,
            failed_jobs=worker.failed_job_count,
        )
        for worker in found
    ]
    return WorkersDocument(workers=sorted(infos, key=lambda info: info.name))
