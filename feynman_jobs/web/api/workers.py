"""Workers over HTTP (operators only): who is running, on which host, doing what; ask one to stop."""

from __future__ import annotations

from typing import Any

from feynman_jobs.lifecycle import control
from feynman_jobs.ops.workers import WorkersDocument, list_workers
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import documented

bp = api_blueprint("feynman_workers", __name__)


@bp.get("/workers")
@documented(responses={200: WorkersDocument})
def read_workers() -> dict[str, Any]:
    """Every live worker: host, pid, queues, state, current job, last heartbeat (operators)."""
    return list_workers(extension().redis).model_dump(mode="json")


@bp.post("/workers/<name>/shutdown")
@documented(responses={202: None}, problems={404: "`worker-not-found`: no live worker has this name"})
def shutdown_worker(name: str) -> tuple[dict[str, Any], int]:
    """Ask one worker to finish its current job and exit (RQ's shutdown command; operators)."""
    control.shutdown_worker(extension().redis, name)
    return {"name": name, "action": "shutdown-requested"}, 202
