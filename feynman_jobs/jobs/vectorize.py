"""vectorize_documents: chunk text, embed the chunks, store the vectors for similarity search."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs.jobs.context import (
    connection,
    current_job,
    holdable,
    log_extra,
    record_usage,
    set_progress,
    settings,
)
from feynman_jobs.memory.records import MEMORY_NAMESPACE, load_memory
from feynman_jobs.memory.vectors import RedisVectorStore
from feynman_jobs.providers.embedders import get_embedder
from feynman_jobs.text.chunk import chunk_text

logger = logging.getLogger(__name__)

#: Chunk size and overlap in count_tokens units: a few sentences, repeating the previous chunk's tail.
CHUNK_TOKENS = 200
CHUNK_OVERLAP_TOKENS = 40


def memory_document(record: dict[str, Any]) -> dict[str, Any]:
    """The text of a memory record as a document to index."""
    parts = [record["topic"], record["summary"], *record["key_points"], *record["open_questions"]]
    metadata = {
        key: record.get(key) for key in ("topic", "session_id", "learner_id", "language") if record.get(key)
    }
    return {"id": record["id"], "text": "\n".join(part for part in parts if part), "metadata": metadata}


@holdable
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
    # Built in the worker parent (worker_config) and inherited by this work horse: no load per job.
    embedder = get_embedder(settings())
    logger.info(
        "vectorizing %s namespace=%s documents=%d embedder=%s",
        log_extra(job),
        namespace,
        len(documents),
        embedder.name,
    )
    store = RedisVectorStore(connection())
    stored: list[dict[str, Any]] = []
    dim = 0
    for index, document in enumerate(documents):
        chunks = chunk_text(document["text"], max_tokens=CHUNK_TOKENS, overlap_tokens=CHUNK_OVERLAP_TOKENS)
        embedded = embedder.embed(chunks)
        if embedded.tokens:
            record_usage(embedder.name, embedded.tokens, 0)
        dim = embedded.vectors.shape[1] or dim
        store.upsert(
            namespace, document["id"], chunks, embedded.vectors, document.get("metadata"), model=embedder.name
        )
        stored.append({"id": document["id"], "chunks": len(chunks)})
        set_progress((index + 1) / len(documents), f"vectorized {index + 1} of {len(documents)} documents")
    return {
        "namespace": namespace,
        "embedder": embedder.name,
        "dim": dim,
        "documents": stored,
        "chunks": sum(item["chunks"] for item in stored),
    }
