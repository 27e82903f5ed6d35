"""What rq-dashboard 0.9.0 reads jobs with, and the views of it we replace (architecture §9, §10).

Its views reach RQ through module globals (`Job`, `Queue`, `Worker`, `requeue_job`) and four of
them are replaced outright:

- `requeue_job_view` and `requeue_all` called RQ's `requeue_job` without a serializer: binary
  data was loaded from Redis. Ours requeue through lifecycle/control with JSON, like the API.
- `job_info` called `.decode()` on dependency ids (str since rq 2.6) and failed on a job whose
  meta or result is not JSON. Ours reads with JSON and answers 409 for a job it will not load.
- `compact_queue` called RQ's `Queue.compact`, which renames the queue away while it works (a job
  enqueued meanwhile lands behind older ones; a crash midway strands the rest) and fails on an empty
  queue. Ours removes only the ids whose job is gone, one LREM each, and leaves the list in place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.results import Result
from rq.serializers import JSONSerializer

from feynman_jobs import keys, redisio
from feynman_jobs.clock import utc_iso
from feynman_jobs.errors import JobNotFound, JobStateConflict, UnreadableJob
from feynman_jobs.lifecycle import control
from feynman_jobs.lifecycle.status import NOT_JSON, latest_result, load_job
from feynman_jobs.queueing.wiring import JsonJob, JsonQueue, get_queue
from feynman_jobs.web.extension import extension


# rq-compat(rq-dashboard==0.9.0): its job list reads each job's latest result; one another client wrote
# in binary would fail the whole list. Remove when rq-dashboard skips results it cannot read.
class DashboardJob(JsonJob):
    """A JSON job whose latest result is None when it was not written as JSON."""

    def latest_result(self, timeout: int = 0) -> Result | None:
        try:
            return super().latest_result(timeout)
        except NOT_JSON:
            return None


# rq-compat(rq-dashboard==0.9.0): it builds queues with RQ's default binary serializer in places.
# Remove when it takes a serializer and classes per app.
class DashboardQueue(JsonQueue):
    """A JSON queue of DashboardJob."""

    job_class = DashboardJob

    def __init__(self, name: str = "default", connection: Any = None, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = DashboardJob
        super().__init__(name, connection=connection, **kwargs)


# rq-compat(rq-dashboard==0.9.0): remove when workers.json builds workers with the app's serializer.
class DashboardWorker(Worker):
    """A worker view that reads its current job with JSON, whatever rq-dashboard passes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        kwargs["job_class"] = DashboardJob
        kwargs["queue_class"] = DashboardQueue
        super().__init__(*args, **kwargs)


def _when(moment: Any) -> str | None:
    return utc_iso(moment) if moment is not None else None


def job_info(instance_number: int, job_id: str) -> Response:
    """The job page's data, read with JSON; 404 for an unknown job, 409 for one that is not JSON."""
    connection = extension().redis
    job = load_job(connection, job_id)
    latest = latest_result(job)
    dependencies = list(job.dependency_ids)
    body: dict[str, Any] = {
        "id": job.id,
        "created_at": _when(job.created_at),
        "enqueued_at": _when(job.enqueued_at),
        "started_at": _when(job.started_at),
        "ended_at": _when(job.ended_at),
        "origin": job.origin,
        "status": job.get_status(refresh=False).value,
        "result": latest.return_value if latest and latest.type == Result.Type.SUCCESSFUL else None,
        "exc_info": latest.exc_string if latest else None,
        "description": job.description,
        "metadata": json.dumps(job.meta, ensure_ascii=False, default=str),
    }
    if dependencies:
        body["depends_on"] = dependencies
        body["depends_on_status"] = [
            "active" if JsonJob.exists(dep, connection) else "expired" for dep in dependencies
        ]
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response


def requeue_job(job_id: str) -> Response:
    """Requeue one failed job with JSON, as `POST /api/jobs/<id>/requeue` does."""
    control.requeue(extension().redis, job_id)
    return jsonify(status="OK")


def requeue_all(queue_name: str) -> Response:
    """Requeue every failed job of a queue with JSON; jobs that cannot be requeued are counted apart."""
    connection = extension().redis
    registry = get_queue(queue_name, connection).failed_job_registry
    requeued = skipped = 0
    for job_id in registry.get_job_ids(cleanup=False):
        try:
            control.requeue(connection, job_id)
            requeued += 1
        except (JobNotFound, UnreadableJob, JobStateConflict, NoSuchJobError):
            skipped += 1
    return jsonify(status="OK", count=requeued, skipped=skipped)


def compact_queue(queue_name: str) -> Response:
    """Drop the ids of jobs that no longer exist from a queue, without moving the queue."""
    connection = extension().redis
    key = keys.rq_queue(queue_name)
    ids = [redisio.text(raw) for raw in connection.lrange(key, 0, -1)]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.exists(keys.rq_job(job_id))
        alive = pipe.execute()
    gone = sorted({job_id for job_id, exists in zip(ids, alive, strict=True) if not exists})
    for job_id in gone:
        connection.lrem(key, 0, job_id)
    return jsonify(status="OK", removed=len(gone))


#: rq-dashboard endpoints answered by the views above instead of its own.
REPLACED_VIEWS: dict[str, Callable[..., Any]] = {
    "rq_dashboard.job_info": job_info,
    "rq_dashboard.requeue_job_view": requeue_job,
    "rq_dashboard.requeue_all": requeue_all,
    "rq_dashboard.compact_queue": compact_queue,
}
#: rq-dashboard endpoints that change state: POST only, whatever methods its rules allow.
ACTIONS = frozenset(
    {
        "rq_dashboard.delete_job_view",
        "rq_dashboard.requeue_job_view",
        "rq_dashboard.requeue_all",
        "rq_dashboard.empty_queue",
        "rq_dashboard.compact_queue",
    }
)
