"""Memory records: what a consolidated conversation becomes, stored in Redis under one id."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from feynman_jobs import keys, redisio
from feynman_jobs.errors import MemoryNotFound

#: The vector-store namespace memories are indexed in.
MEMORY_NAMESPACE = "memories"


def save_memory(connection: Redis, record: dict[str, Any]) -> None:
    """Store (or replace) a memory record: writing the same id twice leaves one record."""
    connection.set(keys.memory(record["id"]), json.dumps(record, ensure_ascii=False))


def load_memory(connection: Redis, memory_id: str) -> dict[str, Any]:
    """A stored memory record (raises MemoryNotFound)."""
    raw = connection.get(keys.memory(memory_id))
    if raw is None:
        raise MemoryNotFound(f"no memory with id {memory_id!r}")
    record: dict[str, Any] = json.loads(redisio.text(raw))
    return record
