"""The bucketed rate-limit windows on a real Redis: constant memory, every limit of a call taken at once,
the wait until room frees, the server's clock."""

from __future__ import annotations

import time

import pytest
from redis import Redis

from feynman_jobs.costs import control
from feynman_jobs.costs.ratelimit import ProviderLimiter, Window, usage
from feynman_jobs.errors import HoldJob
from feynman_jobs.settings import load_settings


def test_a_window_keeps_a_bounded_hash_whatever_the_limit(redis: Redis) -> None:
    limiter = ProviderLimiter(redis, load_settings(llm_tpm=10_000_000, llm_rpm=100_000), "chat")
    started = time.monotonic()
    for _ in range(300):
        limiter.acquire(4000)
    seconds_used = time.monotonic() - started
    tpm = Window.of("chat", "tpm")
    assert tpm.buckets == 63  # a call counts for at least 62 s, at most 63 s
    # One field per second used (the calls may straddle a few seconds on a busy machine), never one per
    # call or per token.
    assert redis.hlen(tpm.key) <= int(seconds_used) + 2
    assert sum(int(v) for v in redis.hvals(tpm.key)) == 300 * 4000
    assert int(redis.memory_usage(tpm.key) or 0) < 1024
    figures = usage(redis, load_settings(llm_tpm=10_000_000))["chat"]["tpm"]
    assert (figures["limit"], figures["used"], figures["source"]) == (10_000_000, 1_200_000, "environment")


def test_every_limit_of_a_call_is_checked_before_any_is_taken(redis: Redis) -> None:
    settings = load_settings(embeddings_rpm=10, embeddings_tpm=1000, embeddings_rph=3)
    limiter = ProviderLimiter(redis, settings, "embeddings")
    limiter.acquire(600)
    with pytest.raises(HoldJob) as held:  # the tokens do not fit: the request is not taken either
        limiter.acquire(600, max_wait_s=0)
    assert 60 < held.value.retry_after_s <= 63
    limiter.acquire(400)
    figures = usage(redis, settings)["embeddings"]
    assert (figures["rpm"]["used"], figures["tpm"]["used"], figures["rph"]["used"]) == (2, 1000, 2)
    control.set_limits(redis, {"embeddings.tpm": None}, who="test")
    limiter.acquire(5000)  # the run-time value applies to the next call
    with pytest.raises(HoldJob, match="RPH 3") as held:
        limiter.acquire(1, max_wait_s=0)
    assert 3600 < held.value.retry_after_s <= 3720  # the hour's window: 62 buckets of 60 s
    assert usage(redis, settings)["chat"]["rpm"] == {
        "limit": None,
        "source": "default",
        "changed_at": None,
        "changed_by": None,
        "window_s": 62,
        "used": 0,
        "frees_at": None,
    }
