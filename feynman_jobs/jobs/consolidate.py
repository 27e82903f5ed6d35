"""consolidate_memory: summarize a conversation into a durable memory record."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from feynman_jobs.jobs.context import (
    connection,
    current_job,
    holdable,
    log_extra,
    model_call,
    record_usage,
    set_progress,
    settings,
    take_reask,
)
from feynman_jobs.memory.records import save_memory
from feynman_jobs.providers.llm import llm_for
from feynman_jobs.text.tokens import language

logger = logging.getLogger(__name__)


@holdable
def consolidate_memory(
    topic: str,
    conversation: list[dict[str, str]],
    memory_id: str,
    session_id: str | None = None,
    learner_id: str | None = None,
) -> dict[str, Any]:
    """Write one memory record of the learner's (summary, key points, open questions); a retry rewrites it."""
    job = current_job()
    if learner_id is None:  # only a job enqueued before memories were kept per learner lacks one
        raise ValueError(
            "consolidate_memory needs a learner_id: memories belong to a learner; enqueue it again"
        )
    llm = llm_for(settings(), record_usage, guard=model_call, may_reask=take_reask)
    logger.info(
        "consolidating %s memory=%s messages=%d llm=%s",
        log_extra(job),
        memory_id,
        len(conversation),
        llm.name,
    )
    set_progress(0.1, "summarizing the conversation")
    try:
        draft = llm.summarize(topic, conversation)
    finally:
        llm.close()
    set_progress(0.8, "storing the memory")
    record = {
        "id": memory_id,
        "topic": topic,
        "summary": draft.summary,
        "key_points": list(draft.key_points),
        "open_questions": list(draft.open_questions),
        "language": language(topic + "\n" + "\n".join(m["content"] for m in conversation)),
        "model": llm.name,
        "session_id": session_id,
        "learner_id": learner_id,
        "source_job_id": job.id,
        "message_count": len(conversation),
        "created_at": datetime.now(UTC).isoformat(),
    }
    # The id is fixed before the job runs, so a retry or a re-run overwrites instead of duplicating.
    save_memory(connection(), record)
    set_progress(1.0, "memory stored")
    return record
