"""Import shim: jobs written before the layout moved keep `feynman_jobs.job_events.on_*` as callbacks.

RQ stores each job's callbacks as dotted paths in its hash, and keeps failed jobs for
FEYNMAN_FAILURE_TTL (30 days by default): a job enqueued by an older release must still find them,
also when it is requeued. Remove this module one release later, once FEYNMAN_FAILURE_TTL has passed
since every process runs a release that writes `feynman_jobs.lifecycle.outcomes` instead.
"""

from __future__ import annotations

from feynman_jobs.lifecycle.outcomes import on_failure, on_stopped, on_success

__all__ = ["on_failure", "on_stopped", "on_success"]
