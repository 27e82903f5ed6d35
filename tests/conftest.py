"""Fixtures shared by every test: a real redis-server for the session, flushed around each test.

Unit tests that need no other process may use `fake_redis` instead (fakeredis runs Lua too).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeredis import FakeRedis, FakeServer
from pytest_httpserver import HTTPServer
from redis import Redis

from tests.chat_server import FakeProvider
from tests.support import redis_server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The reliability tests first: they are the longest, so bin/test's test processes (one file
    each at a time) finish together instead of waiting on one long file at the end."""
    items.sort(key=lambda item: 0 if "/tests/reliability/" in str(item.path) else 1)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway redis-server on a free port, for the whole session."""
    with redis_server(Path(tmp_path_factory.mktemp("redis"))) as url:
        yield url


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    """A client of the session's Redis, emptied before and after the test."""
    client = Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def fake_redis() -> Iterator[FakeRedis]:
    """An empty in-process fakeredis (with Lua), for pure unit tests that need no other process."""
    client = FakeRedis(server=FakeServer())
    yield client
    client.close()


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    """A counting chat-completions endpoint on its own threaded local server (requests may overlap)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    fake = FakeProvider(server)
    try:
        yield fake
    finally:
        fake.release.set()
        server.clear()
        server.stop()
