"""Memory records: what a consolidated conversation becomes, stored per learner (architecture §7).

A record lives under its learner's keys and is listed in the learner's set, so everything a learner
left behind can be found, and deleted, from the learner id alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from redis import Redis

from feynman_jobs import keys, redisio
from feynman_jobs.errors import MemoryNotFound
from feynman_jobs.memory.vectors import RedisVectorStore


def save_memory(connection: Redis, record: dict[str, Any]) -> None:
    """Store (or replace) a learner's memory record: writing the same id twice leaves one record."""
    learner_id = record["learner_id"]
    with connection.pipeline(transaction=True) as pipe:
        pipe.set(keys.memory(learner_id, record["id"]), json.dumps(record, ensure_ascii=False))
        pipe.sadd(keys.learner_memories(learner_id), record["id"])
        pipe.execute()


def load_memory(connection: Redis, learner_id: str, memory_id: str) -> dict[str, Any]:
    """A learner's stored memory record (raises MemoryNotFound)."""
    raw = connection.get(keys.memory(learner_id, memory_id))
    if raw is None:
        raise MemoryNotFound(f"no memory {memory_id!r} for this learner")
    record: dict[str, Any] = json.loads(redisio.text(raw))
    return record


def adopt_legacy_memory(connection: Redis, memory_id: str) -> dict[str, Any]:
    """A record of the old shared layout (`memory:<id>`), moved to its learner's keys (MemoryNotFound
    when there is none, or it names no learner). For a follow-up enqueued before the move."""
    key = keys.legacy_memory(memory_id)
    raw = connection.get(key)
    record: dict[str, Any] = json.loads(redisio.text(raw)) if raw is not None else {}
    if not record.get("learner_id"):
        raise MemoryNotFound(f"no memory {memory_id!r} that names its learner")
    save_memory(connection, record)
    connection.delete(key)
    return record


def forget_learner(connection: Redis, learner_id: str) -> dict[str, Any]:
    """Delete every memory record and memory vector of a learner; the counts of what went."""
    members = [redisio.text(raw) for raw in connection.smembers(keys.learner_memories(learner_id))]
    with connection.pipeline(transaction=True) as pipe:
        for memory_id in members:
            pipe.delete(keys.memory(learner_id, memory_id))
        pipe.delete(keys.learner_memories(learner_id))
        deleted = pipe.execute()[: len(members)]
    chunks = RedisVectorStore(connection).drop(keys.memory_namespace(learner_id))
    return {"learner_id": learner_id, "memories_deleted": sum(deleted), "chunks_deleted": chunks}


@dataclass
class Migration:
    """What `migrate_legacy` did: records moved per learner, and records that name no learner."""

    moved: list[tuple[str, str]] = field(default_factory=list)
    unowned: list[str] = field(default_factory=list)
    shared_chunks_dropped: int = 0


def migrate_legacy(connection: Redis, *, delete_unowned: bool = False) -> Migration:
    """Move memory records of the shared layout (`memory:<id>`, one `memories` namespace) to their learners.

    Each record that names a learner goes to that learner's keys (its vectors must be written again:
    the caller enqueues vectorize_documents for each moved record). A record without a learner is
    reported, and deleted only with `delete_unowned`. The shared namespace's vectors are dropped:
    search no longer reads them.
    """
    done = Migration()
    for key in connection.scan_iter(match=keys.LEGACY_MEMORY_PATTERN, count=200):
        raw = connection.get(key)
        if raw is None:
            continue
        record: dict[str, Any] = json.loads(redisio.text(raw))
        if record.get("learner_id"):
            save_memory(connection, record)
            connection.delete(key)
            done.moved.append((record["learner_id"], record["id"]))
        else:
            done.unowned.append(record.get("id", redisio.text(key)))
            if delete_unowned:
                connection.delete(key)
    done.shared_chunks_dropped = RedisVectorStore(connection).drop(keys.MEMORY_NAMESPACE)
    return done
