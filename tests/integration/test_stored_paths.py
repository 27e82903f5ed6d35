"""Dotted paths RQ stored before the layout moved still run: job hashes outlive a deploy."""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.callbacks import Callback
from rq.serializers import JSONSerializer

from feynman_jobs import keys
from feynman_jobs.lifecycle import tallies
from feynman_jobs.lifecycle.status import get_status
from tests.support import Process, wait_until

#: What every job enqueued by the previous release carries in its hash.
OLD_CALLBACKS = {
    "on_success": Callback("feynman_jobs.job_events.on_success"),
    "on_failure": Callback("feynman_jobs.job_events.on_failure"),
    "on_stopped": Callback("feynman_jobs.job_events.on_stopped"),
}


def test_a_job_written_with_the_old_callback_paths_runs_and_is_recorded(
    redis: Redis, worker: Process
) -> None:
    queue = Queue("low", connection=redis, serializer=JSONSerializer)
    finishing = queue.enqueue(
        "feynman_jobs.jobs.rollup.rollup_costs", granularity="hour", meta={"max_retries": 0}, **OLD_CALLBACKS
    )
    failing = queue.enqueue(
        "feynman_jobs.jobs.vectorize.vectorize_documents",
        memory_id="mem-gone",
        meta={"max_retries": 0},
        **OLD_CALLBACKS,
    )
    assert (
        redis.hget(keys.rq_job(finishing.id), "success_callback_name")
        == b"feynman_jobs.job_events.on_success"
    )

    def ended() -> bool:
        return {get_status(redis, job.id).status for job in (finishing, failing)} == {"finished", "failed"}

    wait_until(ended, 30, "both old-path jobs to end")
    assert get_status(redis, finishing.id).status == "finished"
    failed = get_status(redis, failing.id)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.type == "MemoryNotFound"
    tallies.fold(redis)  # as /metrics does before it reads the totals
    raw: dict[bytes, bytes] = redis.hgetall(keys.OUTCOME_COUNTS)  # type: ignore[assignment]
    counts = {key.decode(): int(value) for key, value in raw.items()}
    assert counts == {"rollup_costs|low|finished": 1, "vectorize_documents|low|failed": 1}
