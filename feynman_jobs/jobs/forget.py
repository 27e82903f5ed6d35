"""delete_learner_memories: a learner's memory records and vectors removed, on request (a deletion)."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs.jobs.context import connection, current_job, log_extra
from feynman_jobs.memory.records import forget_learner

logger = logging.getLogger(__name__)


def delete_learner_memories(learner_id: str) -> dict[str, Any]:
    """Delete every memory record and memory vector of one learner; the result counts what went."""
    job = current_job()
    result = forget_learner(connection(), learner_id)
    logger.info(
        "deleted learner memories %s memories=%d chunks=%d",
        log_extra(job),
        result["memories_deleted"],
        result["chunks_deleted"],
    )
    return result
