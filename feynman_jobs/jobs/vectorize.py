"""vectorize_documents: chunk text, embed the chunks, store the vectors for similarity search."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs import text
from feynman_jobs.jobs.context import connection, current_job, log_extra, set_progress
from feynman_jobs.memory import MEMORY_NAMESPACE, load_memory
from feynman_jobs.vectors import RedisVectorStore

logger = logging.getLogger(__name__)

CHUNK_TOKENS = 200
CHUNK_OVERLAP_TOKENS = 40

_embedder: text.HashingEmbedder | None = None


def embedder() -> text.HashingEmbedder:
    """The embedder of this process, built once."""
    global _embedder
    if _embedder is None:
        _embedder = text.HashingEmbedder()
    return _embedder


def memory_document(record: dict[str, Any]) -> dict[str, Any]:
    """The text of a memory record as a document to index."""
    parts = [record["topic"], record["summary"], *record["key_points"], *record["open_questions"]]
    metadata = {
        key: record.get(key) for key in ("topic", "session_id", "learner_id", "language") if record.get(key)
    }
    return {"id": record["id"], "text": "\n".join(part for part in parts if part), "metadata": metadata}


def vectorize_documents(
    memory_id: str | None = None,
    namespace: str | None = None,
    documents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Chunk, embed and upsert each document; re-vectorizing a document replaces its chunks."""
    job = current_job()
    if memory_id is not None:
        namespace = MEMORY_NAMESPACE
        documents = [memory_document(load_memory(connection(), memory_id))]
    if namespace is None or not documents:
        raise ValueError("vectorize_documents needs memory_id, or namespace and documents")
    logger.info("vectorizing %s namespace=%s documents=%d", log_extra(job), namespace, len(documents))
    model = embedder()
    store = RedisVectorStore(connection(), dim=model.dim)
    stored: list[dict[str, Any]] = []
    for index, document in enumerate(documents):
        chunks = text.chunk_text(
            document["text"], max_tokens=CHUNK_TOKENS, overlap_tokens=CHUNK_OVERLAP_TOKENS
        )
        vectors = model.embed(chunks)
        store.upsert(namespace, document["id"], chunks, vectors, document.get("metadata"))
        stored.append({"id": document["id"], "chunks": len(chunks)})
        set_progress((index + 1) / len(documents), f"vectorized {index + 1} of {len(documents)} documents")
    return {
        "namespace": namespace,
        "embedder": model.name,
        "dim": model.dim,
        "documents": stored,
        "chunks": sum(item["chunks"] for item in stored),
    }
