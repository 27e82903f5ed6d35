"""Cost estimates of a job before it runs: which model, how many tokens in and out, what in USD."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feynman_jobs.costs import ledger
from feynman_jobs.providers.llm import LOCAL_ANALYZER, LOCAL_SUMMARIZER
from feynman_jobs.providers.prompts import MAX_OUTPUT_TOKENS, output_tokens
from feynman_jobs.queueing.planning import JobPlan
from feynman_jobs.settings import Settings
from feynman_jobs.text.chunk import chunked_tokens
from feynman_jobs.text.embed import HashingEmbedder
from feynman_jobs.text.tokens import count_tokens

#: Names the offline providers are recorded under in the ledger (and priced by, if listed).
LOCAL_MODELS = {
    "analyze_conversation": LOCAL_ANALYZER,
    "consolidate_memory": LOCAL_SUMMARIZER,
}
#: Instructions and JSON framing sent to a remote model on top of the conversation.
PROMPT_OVERHEAD_TOKENS = 250
#: The offline embedder's name (what vectorize_documents records without an embeddings endpoint).
LOCAL_EMBEDDER = HashingEmbedder().name
#: Tokens embedded for one memory record: its summary, key points and open questions are one model
#: answer (at most MAX_OUTPUT_TOKENS), plus the topic.
MEMORY_DOCUMENT_TOKENS = MAX_OUTPUT_TOKENS + 64


@dataclass(frozen=True)
class Estimate:
    """What one job is expected to cost."""

    job_type: str
    model: str | None
    tokens_in: int
    tokens_out: int
    usd_micros: int

    def as_dict(self) -> dict[str, Any]:
        """The estimate as the API shows it."""
        return {
            "type": self.job_type,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "usd": self.usd_micros / 1e6,
        }


def model_for(job_type: str, settings: Settings) -> str | None:
    """The model a job type calls: the configured endpoint's, else the offline provider's (None: no model)."""
    if job_type == "vectorize_documents":
        return settings.embeddings_model if settings.embeddings_base_url else LOCAL_EMBEDDER
    if job_type not in LOCAL_MODELS:
        return None
    return settings.llm_model if settings.llm_base_url else LOCAL_MODELS[job_type]


def embedding_tokens(kwargs: dict[str, Any]) -> int:
    """Tokens vectorize_documents will embed: every chunk of every document (overlaps count twice);
    a memory record, whose text is not written yet at enqueue, at its bound."""
    if kwargs.get("memory_id") is not None:
        return chunked_tokens(MEMORY_DOCUMENT_TOKENS)
    return sum(
        chunked_tokens(count_tokens(str(doc.get("text", "")))) for doc in kwargs.get("documents") or []
    )


def _text_of(kwargs: dict[str, Any]) -> str:
    parts = [str(kwargs.get("topic", ""))]
    parts += [str(message.get("content", "")) for message in kwargs.get("conversation", [])]
    return "\n".join(parts)


def conversation_tokens(topic: str, conversation: list[dict[str, str]], *, remote: bool) -> tuple[int, int]:
    """Expected tokens in and out for summarizing or analyzing a conversation."""
    tokens_in = count_tokens(_text_of({"topic": topic, "conversation": conversation}))
    tokens_in += PROMPT_OVERHEAD_TOKENS if remote else 0
    return tokens_in, output_tokens(tokens_in)


def estimate_plan(plan: JobPlan, settings: Settings) -> Estimate:
    """The estimate for one planned job."""
    job_type = plan.spec.name
    model = model_for(job_type, settings)
    if model is None:
        return Estimate(job_type, None, 0, 0, 0)
    kwargs = plan.kwargs
    if job_type == "vectorize_documents":
        tokens = embedding_tokens(kwargs)
        return Estimate(job_type, model, tokens, 0, ledger.cost_usd_micros(settings.prices, model, tokens, 0))
    tokens_in, tokens_out = conversation_tokens(
        str(kwargs.get("topic", "")), list(kwargs.get("conversation", [])), remote=bool(settings.llm_base_url)
    )
    usd = ledger.cost_usd_micros(settings.prices, model, tokens_in, tokens_out)
    return Estimate(job_type, model, tokens_in, tokens_out, usd)
