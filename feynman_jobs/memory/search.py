"""Similarity search: one learner's memories, plus shared documents from the namespaces a caller names.

A learner's memories are reachable only through that learner's id (architecture §7): a search names
`learner_id` for memories and `namespace` for shared documents, never a memory namespace by name.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from feynman_jobs import keys
from feynman_jobs.memory.vectors import VectorStore
from feynman_jobs.providers.chat import CallGuard, UsageRecorder, no_guard
from feynman_jobs.providers.embedders import Embedder
from feynman_jobs.queueing.payloads import NAMESPACE_PATTERN, Identifier, not_a_memory_namespace

#: Longest search query, in characters.
MAX_QUERY_CHARS = 2000
MAX_SEARCH_K = 50
#: Shared namespaces one search may name (comma-separated).
MAX_NAMESPACES = 5
_NAME = NAMESPACE_PATTERN.strip("^$")
NAMESPACE_LIST_PATTERN = f"^{_NAME}(,{_NAME}){{0,{MAX_NAMESPACES - 1}}}$"


def _shared_only(value: str) -> str:
    for name in value.split(","):
        not_a_memory_namespace(name)
    return value


class SearchQuery(BaseModel):
    """`GET /api/memories/search` parameters: a learner's memories, shared namespaces, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS)]
    k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K)] = 5
    learner_id: Identifier | None = None
    namespace: (
        Annotated[str, StringConstraints(pattern=NAMESPACE_LIST_PATTERN), AfterValidator(_shared_only)] | None
    ) = None

    @model_validator(mode="after")
    def _something_to_search(self) -> SearchQuery:
        if self.learner_id is None and self.namespace is None:
            raise ValueError(
                "give learner_id (that learner's memories), namespace (shared documents), or both"
            )
        return self

    @property
    def namespaces(self) -> list[str]:
        """The shared namespaces named, without repeats, in the order given."""
        return list(dict.fromkeys(self.namespace.split(","))) if self.namespace else []


class SearchHit(BaseModel):
    """One chunk found: where (`memories` for the learner's own), its document, position, score, text."""

    namespace: str
    doc_id: str
    chunk: int
    score: float
    text: str
    metadata: dict[str, Any]


class SearchResults(BaseModel):
    """The hits of one search, best first, across the learner's memories and the namespaces named."""

    learner_id: str | None
    namespaces: list[str]
    query: str
    k: int
    embedder: str
    hits: list[SearchHit]


def search(
    store: VectorStore,
    embedder: Embedder,
    query: SearchQuery,
    *,
    guard: CallGuard = no_guard,
    record: UsageRecorder | None = None,
) -> SearchResults:
    """Embed the query once (a model call: guarded, recorded) and rank the chunks of all sources together."""
    vector = embedder.embed([query.q], guard=guard, record=record).vectors[0]
    sources = [(name, name) for name in query.namespaces]
    if query.learner_id is not None:
        sources.insert(0, (keys.MEMORY_NAMESPACE, keys.memory_namespace(query.learner_id)))
    hits = [
        SearchHit(namespace=label, **hit.__dict__)
        for label, namespace in sources
        for hit in store.search(namespace, vector, query.k, model=embedder.name)
    ]
    hits.sort(key=lambda hit: -hit.score)
    return SearchResults(
        learner_id=query.learner_id,
        namespaces=query.namespaces,
        query=query.q,
        k=query.k,
        embedder=embedder.name,
        hits=hits[: query.k],
    )
