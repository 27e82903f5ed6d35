"""consolidate_memory: summarize a conversation into a durable memory record."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from feynman_jobs import text
from feynman_jobs.estimate import LOCAL_MODELS, conversation_tokens
from feynman_jobs.jobs.context import (
    connection,
    current_job,
    holdable,
    log_extra,
    model_call,
    record_usage,
    set_progress,
)
from feynman_jobs.memory import save_memory

logger = logging.getLogger(__name__)

#: The offline summarizer's name in the cost ledger.
LOCAL_SUMMARIZER = LOCAL_MODELS["consolidate_memory"]


@holdable
def consolidate_memory(
    topic: str,
    conversation: list[dict[str, str]],
    memory_id: str,
    session_id: str | None = None,
    learner_id: str | None = None,
) -> dict[str, Any]:
    """Write one memory record (summary, key points, open questions); a retry rewrites the same record."""
    job = current_job()
    logger.info("consolidating %s memory=%s messages=%d", log_extra(job), memory_id, len(conversation))
    set_progress(0.1, "summarizing the conversation")
    with model_call(LOCAL_SUMMARIZER, *conversation_tokens(topic, conversation, remote=False), remote=False):
        summary = text.summarize(topic, conversation)
        tokens_in, tokens_out = summary["tokens_in"], summary["tokens_out"]
        assert isinstance(tokens_in, int)
        assert isinstance(tokens_out, int)
        record_usage(LOCAL_SUMMARIZER, tokens_in, tokens_out)
    set_progress(0.8, "storing the memory")
    record = {
        "id": memory_id,
        "topic": topic,
        "summary": summary["summary"],
        "key_points": summary["key_points"],
        "open_questions": summary["open_questions"],
        "language": summary["language"],
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
