"""Real processes from the Procfile: gunicorn for the session, an `rq worker` per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.support import Process, start_web, start_worker


@pytest.fixture(scope="session")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Procfile's `web` process (gunicorn) on a free port; yields its base URL."""
    web, base = start_web(redis_url, Path(tmp_path_factory.mktemp("web")) / "web.log")
    yield base
    web.stop()


@pytest.fixture
def worker(redis_url: str, redis: Redis, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Process]:
    """One real `rq worker high default low --with-scheduler` with the Procfile's flags; an indirect
    parameter sets FEYNMAN_WORKER_CONCURRENCY (tests.support.SLOTS_AND_FORKING)."""
    slots = getattr(request, "param", None)
    env = {"FEYNMAN_WORKER_CONCURRENCY": str(slots)} if slots else None
    proc = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    yield proc
    proc.stop()
