"""The chat prompts for consolidation and analysis: instructions plus the transcript, asking for JSON."""

from __future__ import annotations

from feynman_jobs.text.summarize import bounded

#: Characters of a conversation sent to the model; longer conversations have their longest messages cut.
MAX_PROMPT_CHARS = 60_000
#: Output bounds per call; a remote call asks for at most this many tokens.
MAX_OUTPUT_TOKENS = 1024
MIN_OUTPUT_TOKENS = 128
_SPEAKERS = {"user": "Learner", "assistant": "Tutor", "system": "Tutor instructions"}

_COMMON = (
    "You help a tutor who uses the Feynman technique: a learner explains a topic in their own words "
    "and the tutor questions them. Write every value in the language the learner uses (Chinese stays "
    "Chinese). Answer with one JSON object and nothing else."
)

_CONSOLIDATION = (
    "Turn this tutoring conversation into a durable memory for the learner. Keys:\n"
    '- "summary": 2-4 sentences on what the learner now understands about the topic;\n'
    '- "key_points": up to 5 short statements of the facts established in the conversation;\n'
    '- "open_questions": up to 5 questions that were raised and not answered, or the learner was '
    "unsure about ([] if none)."
)

_ANALYSIS = (
    "Evaluate the learner's explanation. Keys, each a list of short strings:\n"
    '- "key_ideas": the ideas of the topic an explanation should cover (3-8);\n'
    '- "covered": those key ideas the learner explained correctly in their own words;\n'
    '- "unexplained_terms": jargon the learner used without explaining it;\n'
    '- "gaps": missing ideas or misconceptions, each stated plainly;\n'
    '- "follow_up_questions": 1-5 questions the tutor should ask next.'
)


def transcript(conversation: list[dict[str, str]]) -> str:
    """The conversation as labelled turns, bounded in length."""
    turns = bounded(conversation, MAX_PROMPT_CHARS)
    return "\n\n".join(f"{_SPEAKERS.get(m['role'], m['role'])}: {m['content']}" for m in turns)


def _messages(task: str, topic: str, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": f"{_COMMON}\n\n{task}"},
        {"role": "user", "content": f"Topic: {topic}\n\nConversation:\n\n{transcript(conversation)}"},
    ]


def consolidation(topic: str, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """Messages asking for {summary, key_points, open_questions}."""
    return _messages(_CONSOLIDATION, topic, conversation)


def analysis(topic: str, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """Messages asking for {key_ideas, covered, unexplained_terms, gaps, follow_up_questions}."""
    return _messages(_ANALYSIS, topic, conversation)


def output_tokens(tokens_in: int) -> int:
    """The expected (and, for a remote model, the allowed) output of a summary or an analysis."""
    return max(MIN_OUTPUT_TOKENS, min(MAX_OUTPUT_TOKENS, tokens_in // 2))
