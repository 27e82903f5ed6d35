"""The one way every process reaches Redis: `REDIS_URL` alone, or through Redis Sentinel.

With `FEYNMAN_REDIS_SENTINELS` set, the client is redis-py's Sentinel-managed one: each new connection
asks the sentinels where the master is, and a connection that finds its master gone (refused, reset,
or demoted to a replica answering READONLY) is dropped, so the next command reaches the new master
without a restart. `REDIS_URL` still gives the password, ACL user, database and TLS; its host and port
are not used then (architecture §8).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis import Redis
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelManagedSSLConnection

from feynman_jobs.settings import Settings

#: Seconds to open a connection: an outage fails fast (a 503) instead of hanging a request.
CONNECT_TIMEOUT_S = 2
#: Seconds a reply may take; blocking commands the worker sends set their own (RQ raises it).
SOCKET_TIMEOUT_S = 10
#: Seconds a sentinel may take to answer where the master is.
SENTINEL_TIMEOUT_S = 1


def connect(settings: Settings) -> Redis:
    """A Redis client for the service: short timeouts; through the sentinels when they are set."""
    timeouts: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
        "health_check_interval": 30,
        "retry_on_timeout": False,
    }
    if not settings.redis_sentinels:
        return Redis.from_url(settings.redis_url, **timeouts)
    sentinel = _sentinel(settings, url_options(settings.redis_url))
    assert settings.redis_sentinel_master is not None  # settings refuse sentinels without it
    client: Redis = sentinel.master_for(settings.redis_sentinel_master, **timeouts)
    return client


def reached_url(connection: Redis, settings: Settings) -> str:
    """`REDIS_URL` with the address `connection` reaches: with sentinels, the master they name now."""
    if not settings.redis_sentinels:
        return settings.redis_url
    host, port = master_address(connection)
    parts = urlsplit(settings.redis_url)
    credentials, at, _ = parts.netloc.rpartition("@")
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=f"{credentials}{at}{address}"))


def master_address(connection: Redis) -> tuple[str, int]:
    """Where a Sentinel-managed client's master is, as the sentinels answer now."""
    host, port = connection.connection_pool.get_master_address()  # type: ignore[attr-defined]
    return str(host), int(port)


def url_options(redis_url: str) -> dict[str, Any]:
    """What `REDIS_URL` says beside the address: database, ACL user, password and TLS options."""
    options = dict(parse_url(redis_url))
    for address in ("host", "port", "path"):
        options.pop(address, None)
    if options.pop("connection_class", None) is not None and redis_url.startswith("rediss://"):
        options["connection_class"] = SentinelManagedSSLConnection
    return options


def rq_settings(settings: Settings) -> dict[str, Any]:
    """The names `rq worker -c` reads: `REDIS_URL`, or RQ's `SENTINEL` dictionary when sentinels are set."""
    if not settings.redis_sentinels:
        return {"REDIS_URL": settings.redis_url}
    options = url_options(settings.redis_url)
    return {
        "SENTINEL": {
            "INSTANCES": list(settings.redis_sentinels),
            "MASTER_NAME": settings.redis_sentinel_master,
            "DB": options.pop("db", 0),
            "USERNAME": options.pop("username", None),
            "PASSWORD": options.pop("password", None),
            "CONNECTION_KWARGS": {"socket_connect_timeout": CONNECT_TIMEOUT_S, **options},
            "SENTINEL_KWARGS": _sentinel_kwargs(settings),
        }
    }


def _sentinel(settings: Settings, options: dict[str, Any]) -> Sentinel:
    return Sentinel(list(settings.redis_sentinels), sentinel_kwargs=_sentinel_kwargs(settings), **options)


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": SENTINEL_TIMEOUT_S,
        "socket_timeout": SENTINEL_TIMEOUT_S,
    }
    if settings.redis_sentinel_password is not None:
        kwargs["password"] = settings.redis_sentinel_password.get_secret_value()
    return kwargs
