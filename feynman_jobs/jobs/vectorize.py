"""vectorize_documents: chunk text, embed the chunks, store the vectors for similarity search."""

from __future__ import annotations

import logging
from typing import Any

from feynman_jobs import keys
from feynman_jobs.jobs.context import (
    connection,
    current_job,
    holdable,
    log_extra,
    model_call,
    record_usage,
    set_progress,
    settings,
)
from feynman_jobs.memory.records import adopt_legacy_memory, load_memory
from feynman_jobs.memory.vectors import Document, RedisVectorStore
from feynman_jobs.providers.embedders import get_embedder
from feynman_jobs.text.chunk import CHUNK_OVERLAP_TOKENS, CHUNK_TOKENS, chunk_text

logger = logging.getLogger(__name__)

#: Documents embedded in one call and upserted in one round trip; progress is reported per group.
DOCUMENTS_PER_GROUP = 50


def memory_document(record: dict[str, Any]) -> dict[str, Any]:
    """The text of a memory record as a document to index."""
    parts = [record["topic"], record["summary"], *record["key_points"], *record["open_questions"]]
    metadata = {
        key: record.get(key) for key in ("topic", "session_id", "learner_id", "language") if record.get(key)
    }
    return {"id": record["id"], "text": "\n".join(part for part in parts if part), "metadata": metadata}


def _chunks(text: str) -> list[str]:
    return chunk_text(text, max_tokens=CHUNK_TOKENS, overlap_tokens=CHUNK_OVERLAP_TOKENS)


@holdable
def vectorize_documents(
    memory_id: str | None = None,
    learner_id: str | None = None,
    namespace: str | None = None,
    documents: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Chunk, embed and upsert each document; re-vectorizing a document replaces its chunks.

    A memory goes to its learner's own namespace; submitted documents to the shared one they name.
    """
    job = current_job()
    label = namespace
    if memory_id is not None:
        # Without learner_id: a follow-up enqueued before memories were kept per learner.
        record = (
            load_memory(connection(), learner_id, memory_id)
            if learner_id is not None
            else adopt_legacy_memory(connection(), memory_id)
        )
        namespace, label = keys.memory_namespace(record["learner_id"]), keys.MEMORY_NAMESPACE
        documents = [memory_document(record)]
    elif namespace is None or keys.is_memory_namespace(namespace):
        raise ValueError("vectorize_documents needs memory_id with learner_id, or a shared namespace")
    if not documents:
        raise ValueError("vectorize_documents needs documents to index")
    # Built in the worker parent (worker_config) and inherited by this work horse: no load per job.
    embedder = get_embedder(settings())
    logger.info(
        "vectorizing %s namespace=%s documents=%d embedder=%s",
        log_extra(job),
        label,
        len(documents),
        embedder.name,
    )
    store = RedisVectorStore(connection())
    stored: list[dict[str, Any]] = []
    dim = 0
    # A group of documents is embedded in one call (the embedder batches its requests) and upserted in
    # one round trip; progress is reported once per group.
    for start in range(0, len(documents), DOCUMENTS_PER_GROUP):
        group = documents[start : start + DOCUMENTS_PER_GROUP]
        chunked = [_chunks(document["text"]) for document in group]
        # Each request is guarded (budgets, embeddings rate limits) and recorded, like a chat call.
        embedded = embedder.embed([chunk for chunks in chunked for chunk in chunks], guard=model_call,
                                  record=record_usage)  # fmt: skip
        dim = embedded.vectors.shape[1] or dim
        rows = 0
        batch: list[Document] = []
        for document, chunks in zip(group, chunked, strict=True):
            vectors = embedded.vectors[rows : rows + len(chunks)]
            rows += len(chunks)
            batch.append(Document(document["id"], chunks, vectors, document.get("metadata")))
            stored.append({"id": document["id"], "chunks": len(chunks)})
        store.upsert_many(namespace, batch, model=embedder.name)
        done = start + len(group)
        set_progress(done / len(documents), f"vectorized {done} of {len(documents)} documents")
    return {
        "namespace": label,
        "embedder": embedder.name,
        "dim": dim,
        "documents": stored,
        "chunks": sum(item["chunks"] for item in stored),
    }
