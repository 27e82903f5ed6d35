"""The vector store: chunk vectors with their text and metadata in Redis, cosine top-k by namespace."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from redis import Redis
from redis.exceptions import WatchError

from feynman_jobs import redisio
from feynman_jobs.queues import KEY_PREFIX


@dataclass(frozen=True)
class Hit:
    """One chunk found by a search."""

    doc_id: str
    chunk: int
    score: float
    text: str
    metadata: dict[str, Any]


class RedisVectorStore:
    """Vectors as float32 bytes in one hash per chunk; each document's chunks listed under the document."""

    def __init__(self, connection: Redis, *, dim: int) -> None:
        self.connection = connection
        self.dim = dim

    def _prefix(self, namespace: str) -> str:
        return f"{KEY_PREFIX}vec:{namespace}:"

    def upsert(
        self,
        namespace: str,
        doc_id: str,
        chunks: list[str],
        vectors: NDArray[np.float32],
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Replace a document's chunks with these, atomically; returns how many were stored."""
        if vectors.shape != (len(chunks), self.dim):
            raise ValueError(f"expected {len(chunks)} vectors of {self.dim} dims, got {vectors.shape}")
        prefix = self._prefix(namespace)
        doc_key = f"{prefix}doc:{doc_id}"
        meta = json.dumps(metadata or {}, ensure_ascii=False)
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    # WATCH the document so two writers of the same document cannot leave orphan chunks.
                    pipe.watch(doc_key)
                    old_chunk_keys = pipe.smembers(doc_key)
                    pipe.multi()
                    if old_chunk_keys:
                        pipe.delete(*old_chunk_keys)
                        pipe.srem(f"{prefix}chunks", *old_chunk_keys)
                    pipe.delete(doc_key)
                    for index, (text, vector) in enumerate(zip(chunks, vectors, strict=True)):
                        chunk_key = f"{prefix}chunk:{doc_id}:{index}"
                        pipe.hset(
                            chunk_key,
                            mapping={
                                "doc_id": doc_id,
                                "chunk": index,
                                "text": text,
                                "metadata": meta,
                                "vector": vector.astype(np.float32).tobytes(),
                            },
                        )
                        pipe.sadd(doc_key, chunk_key)
                        pipe.sadd(f"{prefix}chunks", chunk_key)
                    pipe.execute()
                    break
                except WatchError:
                    continue
        return len(chunks)

    def search(self, namespace: str, query: NDArray[np.float32], k: int = 5) -> list[Hit]:
        """The k chunks most similar to `query` (a normalised vector) by cosine."""
        prefix = self._prefix(namespace)
        keys = sorted(self.connection.smembers(f"{prefix}chunks"))
        if not keys:
            return []
        with self.connection.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, "vector")
            raw_vectors = pipe.execute()
        present = [(key, raw) for key, raw in zip(keys, raw_vectors, strict=True) if raw]
        matrix = np.frombuffer(b"".join(raw for _, raw in present), dtype=np.float32).reshape(-1, self.dim)
        scores = matrix @ query.astype(np.float32)
        order = np.argsort(-scores)[:k]
        hits = []
        for index in order:
            fields = self.connection.hmget(present[index][0], ["doc_id", "chunk", "text", "metadata"])
            doc_id, chunk, text, meta = (redisio.text(value) if value else "" for value in fields)
            hits.append(Hit(doc_id, int(chunk or 0), float(scores[index]), text, json.loads(meta or "{}")))
        return hits
