"""Typed views of redis-py replies (its annotations are unions of every reply shape)."""

from __future__ import annotations

from typing import cast

from redis import Redis

#: A stream reply without decoding: [(entry id, {field: value})].
StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


def text(value: object) -> str:
    """A reply value as str (replies are bytes: clients are opened without decode_responses)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def xrange(connection: Redis, key: str, low: str, high: str, count: int) -> StreamEntries:
    """XRANGE key low high COUNT count."""
    return cast(StreamEntries, connection.xrange(key, min=low, max=high, count=count))


def xrevrange(connection: Redis, key: str, count: int | None = None) -> StreamEntries:
    """XREVRANGE key + - [COUNT count]: newest first."""
    return cast(StreamEntries, connection.xrevrange(key, "+", "-", count=count))
