"""The LLM provider: summaries and analyses from a chat-completions endpoint, or offline when none is set."""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from feynman_jobs.providers import prompts
from feynman_jobs.providers.chat import (
    CallGuard,
    ChatClient,
    ReaskPolicy,
    UsageRecorder,
    always_reask,
    no_guard,
)
from feynman_jobs.providers.prompts import output_tokens
from feynman_jobs.settings import Settings
from feynman_jobs.text.analyze import analyze
from feynman_jobs.text.summarize import summarize
from feynman_jobs.text.tokens import count_tokens

#: The offline implementations' names in the cost ledger.
LOCAL_SUMMARIZER = "local-extractive-summarizer"
LOCAL_ANALYZER = "local-heuristic-analyzer"

Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class _Answer(BaseModel):
    # Extra keys from a chatty model are dropped; missing or mistyped ones are what "invalid" means.
    model_config = ConfigDict(extra="ignore", frozen=True)


class MemoryDraft(_Answer):
    """What a conversation consolidates into."""

    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
    key_points: Annotated[list[Item], Field(max_length=20)]
    open_questions: Annotated[list[Item], Field(max_length=20)]


class AnalysisDraft(_Answer):
    """A Feynman tutor's evaluation of a learner's explanation."""

    key_ideas: Annotated[list[Item], Field(min_length=1, max_length=20)]
    covered: Annotated[list[Item], Field(max_length=20)]
    unexplained_terms: Annotated[list[Item], Field(max_length=20)]
    gaps: Annotated[list[Item], Field(max_length=20)]
    follow_up_questions: Annotated[list[Item], Field(min_length=1, max_length=20)]


class LLM(Protocol):
    """Summaries and analyses of tutoring conversations; each call records its usage."""

    name: str

    def summarize(self, topic: str, conversation: list[dict[str, str]]) -> MemoryDraft:
        """Summary, key points and open questions of a conversation."""
        ...

    def analyze(self, topic: str, conversation: list[dict[str, str]]) -> AnalysisDraft:
        """Key ideas, which were covered, unexplained terms, gaps, follow-up questions."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class LocalLLM:
    """The offline default: TextRank summaries and the heuristic analyzer of feynman_jobs.text."""

    name = "local"

    def __init__(self, record: UsageRecorder, guard: CallGuard = no_guard) -> None:
        self._record = record
        self._guard = guard

    def _estimate(self, topic: str, conversation: list[dict[str, str]]) -> tuple[int, int]:
        tokens_in = count_tokens(topic + "\n" + "\n".join(m["content"] for m in conversation))
        return tokens_in, output_tokens(tokens_in)

    def summarize(self, topic: str, conversation: list[dict[str, str]]) -> MemoryDraft:
        """Extract the summary, key points and open questions from the conversation's own sentences."""
        with self._guard(LOCAL_SUMMARIZER, *self._estimate(topic, conversation), remote=False):
            result = summarize(topic, conversation)
            self._record(LOCAL_SUMMARIZER, _int(result["tokens_in"]), _int(result["tokens_out"]))
        # Trusted local output: built, not validated (an empty list is a fine answer offline).
        return MemoryDraft.model_construct(
            summary=str(result["summary"]),
            key_points=_strings(result["key_points"]),
            open_questions=_strings(result["open_questions"]),
        )

    def analyze(self, topic: str, conversation: list[dict[str, str]]) -> AnalysisDraft:
        """Evaluate the explanation with the local heuristics."""
        with self._guard(LOCAL_ANALYZER, *self._estimate(topic, conversation), remote=False):
            result = analyze(topic, conversation)
            self._record(LOCAL_ANALYZER, _int(result["tokens_in"]), _int(result["tokens_out"]))
        return AnalysisDraft.model_construct(
            **{key: _strings(result[key]) for key in AnalysisDraft.model_fields}  # type: ignore[arg-type]
        )

    def close(self) -> None:
        """Nothing to release."""


class EndpointLLM:
    """An OpenAI-compatible chat-completions endpoint, asked for JSON and validated."""

    def __init__(self, chat: ChatClient) -> None:
        self._chat = chat
        self.name = chat.model

    def summarize(self, topic: str, conversation: list[dict[str, str]]) -> MemoryDraft:
        """Ask the model for the memory record's fields."""
        return self._chat.ask_json(prompts.consolidation(topic, conversation), MemoryDraft)

    def analyze(self, topic: str, conversation: list[dict[str, str]]) -> AnalysisDraft:
        """Ask the model for the analysis's fields."""
        return self._chat.ask_json(prompts.analysis(topic, conversation), AnalysisDraft)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._chat.close()


def llm_for(
    settings: Settings,
    record: UsageRecorder,
    guard: CallGuard = no_guard,
    may_reask: ReaskPolicy = always_reask,
) -> LLM:
    """The configured LLM: the endpoint when FEYNMAN_LLM_BASE_URL is set, else the offline one.

    `guard` wraps every model call (jobs pass the budget and rate-limit check); `may_reask` says
    whether an invalid answer may be sent back (jobs allow it once per job).
    """
    if settings.llm_base_url is None:
        return LocalLLM(record, guard)
    chat = ChatClient(
        settings.llm_base_url,
        model=settings.llm_model,
        api_key=settings.llm_api_key,
        timeout_s=settings.llm_timeout_s,
        record=record,
        guard=guard,
        may_reask=may_reask,
    )
    return EndpointLLM(chat)


def _strings(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(item) for item in value]


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value
