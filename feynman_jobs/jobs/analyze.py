"""analyze_conversation: evaluate a learner's explanation the way a Feynman tutor would."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs import text
from feynman_jobs.estimate import LOCAL_MODELS, conversation_tokens
from feynman_jobs.jobs.context import current_job, holdable, log_extra, model_call, record_usage, set_progress

logger = logging.getLogger(__name__)

#: The offline analyzer's name in the cost ledger.
LOCAL_ANALYZER = LOCAL_MODELS["analyze_conversation"]


@holdable
def analyze_conversation(
    session_id: str,
    topic: str,
    conversation: list[dict[str, str]],
    learner_id: str | None = None,
) -> dict[str, Any]:
    """Key ideas of the topic, which the learner covered, unexplained jargon, gaps, follow-up questions."""
    job = current_job()
    logger.info("analyzing %s session=%s messages=%d", log_extra(job), session_id, len(conversation))
    set_progress(0.1, "analyzing the explanation")
    with model_call(LOCAL_ANALYZER, *conversation_tokens(topic, conversation, remote=False), remote=False):
        analysis = text.analyze(topic, conversation)
        tokens_in, tokens_out = analysis.pop("tokens_in"), analysis.pop("tokens_out")
        assert isinstance(tokens_in, int)
        assert isinstance(tokens_out, int)
        record_usage(LOCAL_ANALYZER, tokens_in, tokens_out)
    set_progress(1.0, "analysis done")
    return {"session_id": session_id, "learner_id": learner_id, "topic": topic, **analysis}
