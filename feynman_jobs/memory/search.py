"""Similarity search over what vectorize_documents stored: the query, the embedding, the hits."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from feynman_jobs.memory.records import MEMORY_NAMESPACE
from feynman_jobs.memory.vectors import VectorStore
from feynman_jobs.providers.embedders import Embedder
from feynman_jobs.queueing.payloads import Namespace

#: Longest search query, in characters.
MAX_QUERY_CHARS = 2000
MAX_SEARCH_K = 50


class SearchQuery(BaseModel):
    """`GET /api/memories/search` parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS)]
    k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K)] = 5
    namespace: Namespace = MEMORY_NAMESPACE


class SearchHit(BaseModel):
    """One chunk found: its document, position, cosine score, text and the document's metadata."""

    doc_id: str
    chunk: int
    score: float
    text: str
    metadata: dict[str, Any]


class SearchResults(BaseModel):
    """The hits of one search, best first."""

    namespace: str
    query: str
    k: int
    embedder: str
    hits: list[SearchHit]


def search(store: VectorStore, embedder: Embedder, query: SearchQuery) -> SearchResults:
    """Embed the query with the embedder the namespace was indexed with, and rank its chunks."""
    vector = embedder.embed([query.q]).vectors[0]
    hits = store.search(query.namespace, vector, query.k, model=embedder.name)
    return SearchResults(
        namespace=query.namespace,
        query=query.q,
        k=query.k,
        embedder=embedder.name,
        hits=[SearchHit(**hit.__dict__) for hit in hits],
    )
