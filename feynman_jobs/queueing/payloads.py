"""Payload models, one per job type: the API validates with them and the OpenAPI document shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from feynman_jobs import keys

#: Bounds that keep one job's payload small enough for Redis and for a model's context.
MAX_MESSAGES = 500
MAX_MESSAGE_CHARS = 20_000
MAX_TOPIC_CHARS = 500
MAX_DOCUMENTS = 200
MAX_DOCUMENT_CHARS = 200_000
MAX_ID_CHARS = 200

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_CHARS)]
#: Vector-store namespaces are part of Redis keys: a plain name.
NAMESPACE_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"
Namespace = Annotated[str, StringConstraints(pattern=NAMESPACE_PATTERN)]


def not_a_memory_namespace(namespace: str) -> str:
    """Refuse the namespaces of learners' memories: only a learner's own jobs write there."""
    if keys.is_memory_namespace(namespace):
        raise ValueError(
            f"{keys.MEMORY_NAMESPACE!r} and names starting with '{keys.MEMORY_NAMESPACE}.' hold learners' "
            "memories; use another namespace for shared documents, or learner_id to reach memories"
        )
    return namespace


#: A namespace of shared documents: anything but a memory namespace.
SharedNamespace = Annotated[Namespace, AfterValidator(not_a_memory_namespace)]
Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TOPIC_CHARS)]


def text_only(value: object) -> object:
    """Refuse anything but an RFC 3339 string (or None) before pydantic parses a date-time."""
    # pydantic would read a number, or a string of digits (a query parameter), as Unix time.
    if value is None:
        return value
    if not isinstance(value, str) or _is_number(value):
        raise ValueError("must be an RFC 3339 date-time string")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


#: A time in a JSON body: an RFC 3339 string, never a bare number.
JsonDatetime = Annotated[datetime, BeforeValidator(text_only)]


class Payload(BaseModel):
    """Base of every payload: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(Payload):
    """One turn of a tutoring conversation; `user` is the learner."""

    role: Literal["user", "assistant", "system"]
    content: Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE_CHARS)]


Conversation = Annotated[list[Message], Field(min_length=1, max_length=MAX_MESSAGES)]


class AnalyzeConversation(Payload):
    """Evaluate a learner's explanation of a topic."""

    session_id: Identifier
    topic: Topic
    conversation: Conversation
    learner_id: Identifier | None = None

    @model_validator(mode="after")
    def _has_learner_turn(self) -> AnalyzeConversation:
        if not any(message.role == "user" for message in self.conversation):
            raise ValueError("conversation has no message with role 'user' (the learner) to analyze")
        return self


class ConsolidateMemory(Payload):
    """Summarize a conversation into a memory record of the learner's (one per session when given)."""

    topic: Topic
    conversation: Conversation
    learner_id: Identifier
    session_id: Identifier | None = None


class Document(Payload):
    """A text to vectorize, with an id unique within its namespace."""

    id: Identifier
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_DOCUMENT_CHARS)]
    metadata: dict[str, str | int | float | bool | None] | None = None


class VectorizeDocuments(Payload):
    """Either a learner's stored memory (`memory_id` and `learner_id`) or documents in a shared namespace."""

    memory_id: Identifier | None = None
    learner_id: Identifier | None = None
    namespace: SharedNamespace | None = None
    documents: Annotated[list[Document], Field(min_length=1, max_length=MAX_DOCUMENTS)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VectorizeDocuments:
        memory = self.memory_id is not None or self.learner_id is not None
        if memory and (self.namespace is not None or self.documents is not None):
            raise ValueError("give either memory_id with learner_id, or namespace with documents, not both")
        if memory and (self.memory_id is None or self.learner_id is None):
            raise ValueError("a memory is named by memory_id and learner_id together")
        if not memory and (self.namespace is None or self.documents is None):
            raise ValueError("give either memory_id with learner_id, or namespace with documents")
        if self.documents is not None and len({doc.id for doc in self.documents}) != len(self.documents):
            raise ValueError("document ids must be unique within one request")
        return self


class ReapAbandonedJobs(Payload):
    """Retry or fail started jobs whose worker's key has expired; takes no parameters."""


class DeleteLearnerMemories(Payload):
    """Remove every memory record and memory vector of one learner."""

    learner_id: Identifier


class CleanRegistries(Payload):
    """RQ's registry cleanup plus the service's job index; takes no parameters."""


class RollupCosts(Payload):
    """Fold the cost ledger of one window into its rollup."""

    granularity: Literal["hour", "day"]
    window_start: JsonDatetime | None = None


class DeliverWebhook(Payload):
    """Send one signed webhook: the status document of `job_id` to `url` (the service enqueues it)."""

    job_id: Identifier
    delivery_id: Identifier
    event: Literal["finished", "failed", "stopped", "canceled"]
    url: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
