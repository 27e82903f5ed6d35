"""Job outcomes recorded in Redis by RQ callbacks, for stats and metrics across every process.

RQ runs these callbacks in the work horse after each attempt. Each writes one event to a capped
stream: windowed stats read it directly, and the all-time counts and run/wait histograms behind
`/metrics` are folded from it by whoever reads them (lifecycle/tallies.py).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job

from feynman_jobs import keys, redisio
from feynman_jobs.costs import reservations
from feynman_jobs.errors import PermanentJobError
from feynman_jobs.lifecycle import deliveries, tallies, timeline
from feynman_jobs.lifecycle.status import RETRIES_FORGONE_META
from feynman_jobs.queueing.catalog import type_of

logger = logging.getLogger(__name__)

#: Events kept for windowed stats (about a day at one job per second).
EVENTS_MAXLEN = 100_000
OUTCOMES = ("finished", "failed", "retried", "stopped")


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds())


def record(
    connection: Redis,
    *,
    job_type: str,
    queue: str,
    outcome: str,
    wait_s: float | None,
    run_s: float | None,
    job_id: str = "",
    timeline_entries: tuple[int, list[str]] | None = None,
) -> None:
    """Record one attempt's outcome: one event in the capped stream, marked to be folded into the
    all-time counts and histograms (lifecycle/tallies.py).

    With `timeline_entries` (the list's TTL and the entries), they go into the job's timeline in the
    same round trip; with no entries, the timeline's list only gets that TTL.
    """
    # Not a transaction: each command stands alone, and a job pays for every command here.
    with connection.pipeline(transaction=False) as pipe:
        event = {"type": job_type, "queue": queue, "outcome": outcome, "job_id": job_id, tallies.MARK: "1"}
        event |= {"wait_s": f"{wait_s:.6f}"} if wait_s is not None else {}
        event |= {"run_s": f"{run_s:.6f}"} if run_s is not None else {}
        pipe.xadd(keys.OUTCOME_EVENTS, event, maxlen=EVENTS_MAXLEN, approximate=True)  # type: ignore[arg-type]
        if timeline_entries is not None:
            ttl, entries = timeline_entries
            if entries:
                timeline.add(pipe, job_id, ttl, *entries)
            else:
                timeline.keep(pipe, job_id, ttl)
        pipe.execute()


def _record_job(job: Job, connection: Redis, outcome: str) -> None:
    job_type = type_of(job.func_name)
    wait_s = _seconds(job.enqueued_at, job.started_at)
    run_s = _seconds(job.started_at, job.ended_at)
    # One line per attempt; the fields travel as `extra` so JSON logs carry them as keys.
    fields: dict[str, Any] = {"job_type": job_type, "job_id": job.id, "queue": job.origin, "outcome": outcome}
    fields |= {"duration_s": round(run_s, 6) if run_s is not None else None}
    fields |= {"wait_s": round(wait_s, 6) if wait_s is not None else None}
    logger.info(
        "job %s type=%s id=%s queue=%s duration_s=%s",
        outcome,
        job_type,
        job.id,
        job.origin,
        fields["duration_s"],
        extra=fields,
    )
    # Bookkeeping must never fail the job: RQ would record the callback's error as the job's.
    try:
        if outcome != "retried" and job.meta.get(reservations.RESERVED_META):
            reservations.release_job(connection, job.id)
        # A finished attempt's timeline entries are read from the job hash (lifecycle/timeline.py), a
        # failed one's come from record_attempt_error; a stop may be told by a process that did not
        # run the job (the worker parent), so its start is read again.
        entries: tuple[int, list[str]] | None = None
        if outcome == "stopped":
            timeline.reread_start(connection, job)
            entries = (timeline.ttl_of(job), [*timeline.started_entry(job), timeline.entry("stopped")])
        elif outcome == "finished" and _ran_before(job):
            # Its list was written by an earlier attempt (or kept by a requeue): it ends with the job.
            entries = (timeline.ttl_of(job), [])
        record(
            connection,
            job_type=job_type,
            queue=job.origin,
            outcome=outcome,
            wait_s=wait_s,
            run_s=run_s,
            job_id=job.id,
            timeline_entries=entries,
        )
    except RedisError:
        logger.warning("could not record outcome=%s of job id=%s", outcome, job.id)
    if outcome != "retried":
        deliveries.notify(connection, job, outcome)


def _ran_before(job: Job) -> bool:
    """Whether an earlier attempt of the job ended (failed, held, stopped, or canceled and requeued):
    only then can its timeline's list exist when it finishes."""
    return bool(job.meta.get("attempt_errors") or "previous_attempts" in job.meta or job.number_of_retries)


def on_success(job: Job, connection: Redis, _result: Any, *_args: Any, **_kwargs: Any) -> None:
    """RQ success callback."""
    _record_job(job, connection, "finished")


def will_retry(job: Job, exc_value: BaseException | None) -> bool:
    """Whether RQ tries this job again after this error: never after a permanent one."""
    return job.should_retry and not isinstance(exc_value, PermanentJobError)


def on_failure(job: Job, connection: Redis, _exc_type: Any = None, exc_value: Any = None, *_: Any) -> None:
    """RQ failure callback: `retried` when RQ will try again, else `failed`."""
    _record_job(job, connection, "retried" if will_retry(job, exc_value) else "failed")


def on_stopped(job: Job, connection: Redis) -> None:
    """RQ stopped callback."""
    _record_job(job, connection, "stopped")


#: Attempts remembered per job (RQ itself keeps a result only for the final failure).
MAX_ATTEMPT_ERRORS = 10
MAX_MESSAGE_CHARS = 2000
#: RQ raises some errors without a message.
DEFAULT_MESSAGES = {
    "AbandonedJobError": "the worker running this job stopped heartbeating (killed or lost); job abandoned",
}


def record_attempt_error(
    job: Job, exc_type: type[BaseException], exc_value: BaseException, _tb: TracebackType | None
) -> None:
    """RQ exception handler: remember this attempt's error type and message in the job's meta, and
    let a permanent error (PermanentJobError) fail the job at once.

    RQ records nothing for an attempt that will be retried, so without this a job waiting for its
    retry could not say why. Returns None so RQ's own handlers run too.
    """
    if isinstance(exc_value, PermanentJobError) and job.retries_left:
        # rq-compat(rq==3.0.0): the worker runs exception handlers before it decides on a retry
        # (handle_exception, then handle_job_failure reading job.should_retry), so zeroing retries_left
        # here fails the job now. Remove when RQ lets an exception decline its retry policy.
        job.meta[RETRIES_FORGONE_META] = job.retries_left
        job.retries_left = 0
    errors = list(job.meta.get("attempt_errors", []))[-(MAX_ATTEMPT_ERRORS - 1) :]
    errors.append(
        {
            "at": datetime.now(UTC).isoformat(),
            "type": exc_type.__name__,
            "message": (str(exc_value) or DEFAULT_MESSAGES.get(exc_type.__name__, ""))[:MAX_MESSAGE_CHARS],
        }
    )
    job.meta["attempt_errors"] = errors
    job.save_meta()
    # The timeline's entries for a failed attempt come from here: RQ calls this on every path a failed
    # attempt takes (an exception, a killed work horse, an abandoned job), the callbacks not on all.
    # The attempt's `started` entry goes first: only a finished attempt's is read from the job hash.
    last, ended = errors[-1], "retried" if will_retry(job, exc_value) else "failed"
    entries = [
        *timeline.started_entry(job),
        timeline.entry("attempt_failed", type=last["type"], message=last["message"]),
        timeline.entry(ended),
    ]
    try:
        with job.connection.pipeline(transaction=False) as pipe:
            timeline.add(pipe, job.id, timeline.ttl_of(job), *entries)
            pipe.execute()
    except RedisError:
        logger.warning("could not record the failed attempt of job id=%s in its timeline", job.id)


def events_since(connection: Redis, since_ms: int) -> list[dict[str, Any]]:
    """Recorded events from `since_ms` (Redis server time, ms) until now, oldest first."""
    events: list[dict[str, Any]] = []
    cursor = f"{since_ms}-0"
    while True:
        batch = redisio.xrange(connection, keys.OUTCOME_EVENTS, cursor, "+", 5000)
        for entry_id, fields in batch:
            event: dict[str, Any] = {key.decode(): value.decode() for key, value in fields.items()}
            event.pop(tallies.MARK, None)
            event["at_ms"] = int(entry_id.decode().split("-")[0])
            for name in ("wait_s", "run_s"):
                if name in event:
                    event[name] = float(event[name])
            events.append(event)
        if len(batch) < 5000:
            return events
        cursor = "(" + batch[-1][0].decode()
