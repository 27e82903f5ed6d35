"""What every `feynman-jobs` command shares: settings, a lazily opened Redis, JSON output, errors."""

from __future__ import annotations

import json
from typing import Any

import click
from redis import Redis
from redis.exceptions import RedisError

from feynman_jobs.errors import InvalidRequest
from feynman_jobs.queueing.connection import connect
from feynman_jobs.settings import Settings, load_settings


class Context:
    """Settings read once, a Redis client opened only when a command needs it."""

    def __init__(self, redis_url: str | None, *, check_prices: bool = True) -> None:
        overrides = {"redis_url": redis_url} if redis_url else {}
        self.settings: Settings = load_settings(check_prices=check_prices, **overrides)
        self._redis: Redis | None = None

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()


def echo_json(value: Any) -> None:
    """Print a value as indented JSON."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def fail(error: Exception) -> click.ClickException:
    """One clear line for an error, as click prints it (and a non-zero exit)."""
    if isinstance(error, InvalidRequest) and error.errors:
        details = "; ".join(f"{e.pointer}: {e.detail}" for e in error.errors)
        return click.ClickException(f"{error.detail}: {details}")
    if isinstance(error, RedisError):
        return click.ClickException(f"Redis cannot be reached: {error}")
    return click.ClickException(str(error))
