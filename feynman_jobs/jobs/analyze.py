"""analyze_conversation: evaluate a learner's explanation the way a Feynman tutor would."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs.jobs.context import (
    current_job,
    holdable,
    log_extra,
    model_call,
    record_usage,
    set_progress,
    settings,
    take_reask,
)
from feynman_jobs.providers.llm import llm_for
from feynman_jobs.text.tokens import language

logger = logging.getLogger(__name__)


@holdable
def analyze_conversation(
    session_id: str,
    topic: str,
    conversation: list[dict[str, str]],
    learner_id: str | None = None,
) -> dict[str, Any]:
    """Key ideas of the topic, which the learner covered, unexplained jargon, gaps, follow-up questions."""
    job = current_job()
    llm = llm_for(settings(), record_usage, guard=model_call, may_reask=take_reask)
    logger.info(
        "analyzing %s session=%s messages=%d llm=%s", log_extra(job), session_id, len(conversation), llm.name
    )
    set_progress(0.1, "analyzing the explanation")
    try:
        analysis = llm.analyze(topic, conversation)
    finally:
        llm.close()
    set_progress(1.0, "analysis done")
    covered = len(analysis.covered)
    return {
        "session_id": session_id,
        "learner_id": learner_id,
        "topic": topic,
        **analysis.model_dump(),
        "coverage": round(min(1.0, covered / len(analysis.key_ideas)), 3) if analysis.key_ideas else 0.0,
        "language": language(topic + "\n" + "\n".join(m["content"] for m in conversation)),
        "model": llm.name,
    }
