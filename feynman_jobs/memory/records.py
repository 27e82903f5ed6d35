"""Memory records: what a consolidated conversation becomes, stored in Redis under one id."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from feynman_jobs import redisio
from feynman_jobs.errors import FeynmanError
from feynman_jobs.queueing.wiring import KEY_PREFIX

#: The vector-store namespace memories are indexed in.
MEMORY_NAMESPACE = "memories"


class MemoryNotFound(FeynmanError):
    """A memory id that is not stored."""


def memory_key(memory_id: str) -> str:
    """The Redis key of one memory record."""
    return f"{KEY_PREFIX}memory:{memory_id}"


def save_memory(connection: Redis, record: dict[str, Any]) -> None:
    """Store (or replace) a memory record: writing the same id twice leaves one record."""
    connection.set(memory_key(record["id"]), json.dumps(record, ensure_ascii=False))


def load_memory(connection: Redis, memory_id: str) -> dict[str, Any]:
    """A stored memory record (raises MemoryNotFound)."""
    raw = connection.get(memory_key(memory_id))
    if raw is None:
        raise MemoryNotFound(f"no memory with id {memory_id!r}")
    record: dict[str, Any] = json.loads(redisio.text(raw))
    return record
