"""The vector store: chunk vectors with their text and metadata, namespaced, cosine top-k.

Redis holds one contiguous float32 matrix per namespace (architecture §7); writes are one Lua script each,
so concurrent writers on any host never lose a vector, and readers keep the matrix in process memory
until the namespace's version counter moves.
"""

from __future__ import annotations

import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray
from redis import Redis
from redis.exceptions import NoScriptError, ResponseError

from feynman_jobs import keys, redisio
from feynman_jobs.errors import VectorSpaceMismatch
from feynman_jobs.memory import vector_lua

#: Namespaces whose matrix a process keeps cached (least recently searched dropped first).
CACHED_NAMESPACES = 16


@dataclass(frozen=True)
class Hit:
    """One chunk found by a search."""

    doc_id: str
    chunk: int
    score: float
    text: str
    metadata: dict[str, Any]


class VectorStore(Protocol):
    """What jobs and the search API need from a vector store; a dedicated store can implement it."""

    def upsert(
        self,
        namespace: str,
        doc_id: str,
        chunks: list[str],
        vectors: NDArray[np.float32],
        metadata: dict[str, Any] | None = None,
        *,
        model: str,
    ) -> int:
        """Replace a document's chunks with these, atomically; returns how many were stored."""
        ...

    def search(self, namespace: str, query: NDArray[np.float32], k: int, *, model: str) -> list[Hit]:
        """The k chunks most similar to a normalised query vector, best first."""
        ...


@dataclass(frozen=True)
class _Snapshot:
    version: tuple[str, int]
    model: str
    matrix: NDArray[np.float32]
    labels: list[str]
    live: NDArray[np.bool_]


class RedisVectorStore:
    """The default store, in the Redis the queues use."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection
        self._upsert = connection.register_script(vector_lua.UPSERT)
        self._cache: OrderedDict[str, _Snapshot] = OrderedDict()

    @staticmethod
    def keys(namespace: str) -> list[str]:
        """matrix, labels, chunks, docs and meta keys of a namespace."""
        return keys.vector_namespace(namespace)

    def upsert(
        self,
        namespace: str,
        doc_id: str,
        chunks: list[str],
        vectors: NDArray[np.float32],
        metadata: dict[str, Any] | None = None,
        *,
        model: str,
    ) -> int:
        """Replace a document's chunks with these, atomically; returns how many were stored."""
        if not chunks:
            self.delete(namespace, doc_id)
            return 0
        args = _upsert_args(doc_id, chunks, vectors, metadata, model)
        try:
            self._upsert(keys=self.keys(namespace), args=args)
        except ResponseError as exc:
            raise _mismatch(namespace, model, exc) from None
        return len(chunks)

    def upsert_many(self, namespace: str, documents: list[Document], *, model: str) -> int:
        """`upsert` each document, all in one round trip: each document's replacement is still atomic
        on its own (one script each). Returns the chunks stored."""
        if any(not document.chunks for document in documents):
            for document in documents:
                self.upsert(namespace, document.doc_id, document.chunks, document.vectors,
                            document.metadata, model=model)  # fmt: skip
            return sum(len(document.chunks) for document in documents)
        keys = self.keys(namespace)
        calls = [_upsert_args(d.doc_id, d.chunks, d.vectors, d.metadata, model) for d in documents]
        for attempt in range(2):
            # EVALSHA by hand: a registered script in a pipeline costs a SCRIPT EXISTS round trip first,
            # on every execute. NOSCRIPT (the script cache flushed, a new master): load it, send again;
            # a replacement sent twice stores the same chunks.
            with self.connection.pipeline(transaction=False) as pipe:
                for args in calls:
                    pipe.evalsha(self._upsert.sha, len(keys), *keys, *args)
                try:
                    pipe.execute()
                    break
                except NoScriptError:
                    if attempt:
                        raise
                    self.connection.script_load(vector_lua.UPSERT)
                except ResponseError as exc:
                    raise _mismatch(namespace, model, exc) from None
        return sum(len(document.chunks) for document in documents)

    def delete(self, namespace: str, doc_id: str) -> None:
        """Remove a document's chunks (a no-op for an unknown document)."""
        model, dim = self.connection.hmget(self.keys(namespace)[4], ["model", "dim"])
        if model is None or dim is None:
            return  # nothing was ever stored in this namespace
        # The script with no chunks removes the document's rows, under the namespace's own model and dim.
        args: list[str | bytes | int] = [doc_id, redisio.text(model), int(dim), 0, b""]
        args += [vector_lua.COMPACT_MIN_GARBAGE, uuid.uuid4().hex]
        self._upsert(keys=self.keys(namespace), args=args)

    def drop(self, namespace: str) -> int:
        """Remove a whole namespace (matrix, texts, meta) in one transaction; the chunks it held."""
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hlen(self.keys(namespace)[2])
            pipe.delete(*self.keys(namespace))
            chunks, _ = pipe.execute()
        self._cache.pop(namespace, None)
        return int(chunks)

    def chunk_count(self, namespace: str, doc_id: str | None = None) -> int:
        """Chunks stored for one document, or in the whole namespace."""
        _, _, chunks, docs, _ = self.keys(namespace)
        if doc_id is None:
            return int(self.connection.hlen(chunks))
        rows = self.connection.hget(docs, doc_id)
        return len(json.loads(redisio.text(rows))) if rows else 0

    def _snapshot(self, namespace: str) -> _Snapshot | None:
        """The namespace's matrix and labels, from the cache unless its version moved."""
        matrix_key, labels_key, _, _, meta_key = self.keys(namespace)
        epoch, counter = self.connection.hmget(meta_key, ["epoch", "version"])
        if epoch is None or counter is None:
            return None
        cached = self._cache.get(namespace)
        if cached is not None and cached.version == (redisio.text(epoch), int(counter)):
            self._cache.move_to_end(namespace)
            return cached
        with self.connection.pipeline(transaction=True) as pipe:
            pipe.hmget(meta_key, ["epoch", "version", "model", "dim"])
            pipe.get(matrix_key)
            pipe.lrange(labels_key, 0, -1)
            (raw_epoch, raw_version, raw_model, raw_dim), raw_matrix, raw_labels = pipe.execute()
        dim = int(raw_dim)
        matrix = np.frombuffer(raw_matrix or b"", dtype="<f4").reshape(-1, dim)
        labels = [redisio.text(label) for label in raw_labels]
        live = np.array([bool(label) for label in labels], dtype=np.bool_)
        version = (redisio.text(raw_epoch), int(raw_version))
        snapshot = _Snapshot(version, redisio.text(raw_model), matrix, labels, live)
        self._cache[namespace] = snapshot
        while len(self._cache) > CACHED_NAMESPACES:
            self._cache.popitem(last=False)
        return snapshot

    def search(self, namespace: str, query: NDArray[np.float32], k: int, *, model: str) -> list[Hit]:
        """The k chunks most similar to a normalised query vector by cosine, best first."""
        snapshot = self._snapshot(namespace)
        if snapshot is None or not snapshot.live.any():
            return []
        if snapshot.model != model or snapshot.matrix.shape[1] != query.shape[-1]:
            raise VectorSpaceMismatch(
                f"namespace {namespace!r} was indexed with {snapshot.model}, not {model}; re-vectorize it"
            )
        scores = snapshot.matrix @ query.astype(np.float32).reshape(-1)
        scores = np.where(snapshot.live, scores, -np.inf)
        k = min(k, int(snapshot.live.sum()))
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        order = [int(i) for i in best[np.lexsort((best, -scores[best]))] if np.isfinite(scores[i])]
        labels = [snapshot.labels[i] for i in order]
        stored = self.connection.hmget(self.keys(namespace)[2], labels) if labels else []
        hits = []
        for row, raw in zip(order, stored, strict=True):
            if raw is None:  # replaced since the snapshot was read
                continue
            chunk = json.loads(redisio.text(raw))
            hits.append(
                Hit(chunk["doc_id"], chunk["chunk"], float(scores[row]), chunk["text"], chunk["metadata"])
            )
        return hits


@dataclass(frozen=True)
class Document:
    """One document's chunks, their vectors (one row each) and its metadata, for `upsert_many`."""

    doc_id: str
    chunks: list[str]
    vectors: NDArray[np.float32]
    metadata: dict[str, Any] | None = None


def _upsert_args(
    doc_id: str, chunks: list[str], vectors: NDArray[np.float32], metadata: dict[str, Any] | None, model: str
) -> list[str | bytes | int]:
    """The upsert script's arguments for one document (vector_lua.UPSERT)."""
    if vectors.ndim != 2 or vectors.shape[0] != len(chunks):
        raise ValueError(f"expected {len(chunks)} vectors, got an array of shape {vectors.shape}")
    payloads = [
        json.dumps(
            {"doc_id": doc_id, "chunk": index, "text": chunk, "metadata": metadata or {}}, ensure_ascii=False
        )
        for index, chunk in enumerate(chunks)
    ]
    blob = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    args: list[str | bytes | int] = [doc_id, model, vectors.shape[1], len(chunks), blob, *payloads]
    return [*args, vector_lua.COMPACT_MIN_GARBAGE, uuid.uuid4().hex]


def _mismatch(namespace: str, model: str, error: ResponseError) -> Exception:
    """The store's refusal to mix vector spaces as our error; any other script error unchanged."""
    message = str(error)
    if "VECTOR_SPACE" not in message:
        return error
    _, _, found = message.partition("VECTOR_SPACE ")
    return VectorSpaceMismatch(
        f"namespace {namespace!r} was indexed with {found.strip()} (model dim), not {model}; "
        "re-vectorize it into a new namespace"
    )
