"""Real processes from the Procfile: gunicorn for the session, an `rq worker` per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.support import Process, free_port, http, wait_until


@pytest.fixture(scope="session")
def api(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Procfile's `web` process (gunicorn) on a free port; yields its base URL."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("web")) / "web.log"
    web = Process("web", {"REDIS_URL": redis_url, "PORT": str(port), "WEB_CONCURRENCY": "2"}, log)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert web.proc.poll() is None, f"web exited:\n{web.log()}"
        try:
            return http("GET", base + "/readyz")[0] == 200
        except OSError:
            return False

    wait_until(ready, 30, "gunicorn to answer /readyz")
    yield base
    web.stop()


def start_worker(redis_url: str, log: Path, redis: Redis, env: dict[str, str] | None = None) -> Process:
    """The Procfile's `worker` process (with extra environment), once it has registered with Redis."""
    worker = Process("worker", {"REDIS_URL": redis_url, **(env or {})}, log)

    def registered() -> bool:
        assert worker.proc.poll() is None, f"worker exited:\n{worker.log()}"
        return bool(redis.scard("rq:workers"))

    wait_until(registered, 30, "the rq worker to register")
    return worker


@pytest.fixture
def worker(redis_url: str, redis: Redis, tmp_path: Path) -> Iterator[Process]:
    """One real `rq worker high default low --with-scheduler` with the Procfile's flags."""
    proc = start_worker(redis_url, tmp_path / "worker.log", redis)
    yield proc
    proc.stop()
