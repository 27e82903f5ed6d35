"""Where each process's Redis comes from: REDIS_URL alone, or the sentinels with REDIS_URL's options."""

from __future__ import annotations

import pytest
from redis.sentinel import SentinelManagedSSLConnection

from feynman_jobs.errors import ConfigError
from feynman_jobs.queueing.connection import connect, rq_settings
from feynman_jobs.settings import load_settings


def test_redis_url_alone_is_what_it_was() -> None:
    settings = load_settings(redis_url="redis://:pw@10.1.2.3:6390/4")
    assert rq_settings(settings) == {"REDIS_URL": "redis://:pw@10.1.2.3:6390/4"}
    kwargs = connect(settings).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == ("10.1.2.3", 6390, 4, "pw")


def test_sentinels_take_the_address_and_redis_url_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEYNMAN_REDIS_SENTINELS", " 10.0.0.1:26379, [::1]:26380 ")
    monkeypatch.setenv("FEYNMAN_REDIS_SENTINEL_MASTER", "feynman")
    monkeypatch.setenv("FEYNMAN_REDIS_SENTINEL_PASSWORD", "sentinel-secret")
    monkeypatch.setenv("REDIS_URL", "rediss://jobs:pw@ignored:1/2?ssl_cert_reqs=none")
    settings = load_settings()
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("::1", 26380))
    client = connect(settings)
    pool = client.connection_pool
    assert pool.service_name == "feynman"  # type: ignore[attr-defined]
    assert pool.connection_class is SentinelManagedSSLConnection
    kwargs = pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("jobs", "pw", 2)
    assert "host" not in kwargs
    sentinel = pool.sentinel_manager  # type: ignore[attr-defined]
    assert [s.connection_pool.connection_kwargs["password"] for s in sentinel.sentinels] == [
        "sentinel-secret"
    ] * 2
    rq = rq_settings(settings)["SENTINEL"]
    assert rq["INSTANCES"] == [("10.0.0.1", 26379), ("::1", 26380)]
    assert (rq["MASTER_NAME"], rq["DB"], rq["USERNAME"], rq["PASSWORD"]) == ("feynman", 2, "jobs", "pw")
    assert rq["CONNECTION_KWARGS"]["connection_class"] is SentinelManagedSSLConnection
    assert rq["SENTINEL_KWARGS"]["password"] == "sentinel-secret"


def test_sentinels_without_a_master_name_stop_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEYNMAN_REDIS_SENTINELS", "10.0.0.1:26379")
    with pytest.raises(ConfigError, match="FEYNMAN_REDIS_SENTINEL_MASTER"):
        load_settings()
