"""Hooks the `rq worker` command line installs: each failed attempt's error, kept on the job."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType

from rq.job import Job

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
    """RQ exception handler: remember this attempt's error type and message in the job's meta.

    RQ records nothing for an attempt that will be retried, so without this a job waiting for its
    retry could not say why. Returns None so RQ's own handlers run too.
    """
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
