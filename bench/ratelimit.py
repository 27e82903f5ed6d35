"""Memory and per-call latency of the TPM limiter at TPM = 10M: the bucketed window against the moving
window it replaced (the `limits` library, one Redis list element per token), and one INCRBY as the floor.

Usage: .venv/bin/python -m bench.ratelimit [--tpm 10000000] [--tokens-per-call 4000] [--fill 1.0]

Starts a throwaway redis-server; for each limiter, makes calls of `--tokens-per-call` tokens until
`--fill` of the TPM is used (a busy minute), timing every call, then reads what its keys hold
(MEMORY USAGE) and how Redis's used memory grew. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from feynman_jobs.costs.ratelimit import WINDOW_S, ProviderLimiter
from feynman_jobs.settings import load_settings
from tests.support import redis_server


def moving_window(url: str, redis: Redis, tpm: int) -> Callable[[int], None]:
    """Today's limiter before this change: test, then hit, the `limits` moving window (its TPM path)."""
    storage = RedisStorage(url, connection_pool=redis.connection_pool, key_prefix="bench:old")
    limiter = MovingWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(tpm, WINDOW_S)

    def call(tokens: int) -> None:
        assert limiter.test(item, "llm", "tokens", cost=tokens)
        assert limiter.hit(item, "llm", "tokens", cost=tokens)

    return call


def bucketed(url: str, redis: Redis, tpm: int) -> Callable[[int], None]:
    """The bucketed window (costs/ratelimit.py), with the TPM limit only, as the old one is measured."""
    limiter = ProviderLimiter(redis, load_settings(redis_url=url, llm_tpm=tpm), "chat")
    return lambda tokens: limiter.acquire(tokens, max_wait_s=0)


def incrby(url: str, redis: Redis, tpm: int) -> Callable[[int], None]:
    """One INCRBY per call: the least any shared counter costs (no window at all)."""

    def call(tokens: int) -> None:
        redis.incrby("bench:floor", tokens)

    return call


def size(n: int) -> str:
    """Bytes as B, kB or MB."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B"


def measure(
    redis: Redis, call: Callable[[int], None], calls: int, tokens: int
) -> tuple[list[float], int, int]:
    """Per-call seconds, bytes the limiter's keys hold, and growth of Redis's used memory."""
    before = int(redis.info("memory")["used_memory"])
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        call(tokens)
        latencies.append(time.perf_counter() - start)
    held = sum(int(redis.memory_usage(key, samples=0) or 0) for key in redis.scan_iter("*"))
    grown = int(redis.info("memory")["used_memory"]) - before
    return latencies, held, grown


def main() -> None:
    """Run each limiter in a fresh Redis database and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tpm", type=int, default=10_000_000)
    parser.add_argument("--tokens-per-call", type=int, default=4000)
    parser.add_argument("--fill", type=float, default=1.0, help="fraction of the TPM the calls use")
    args = parser.parse_args()
    calls = int(args.tpm * args.fill) // args.tokens_per_call
    limiters = [
        ("moving window (`limits`), before", moving_window),
        ("bucketed window (Lua, server clock), now", bucketed),
        ("one INCRBY (floor, no window)", incrby),
    ]
    print(f"TPM {args.tpm:,}; {calls:,} calls of {args.tokens_per_call:,} tokens inside one minute\n")
    head = f"| {'limiter':<42} | {'keys hold':>10} | {'Redis grew':>10} |"
    print(head + f" {'p50 ms':>7} | {'p95 ms':>7} | {'max ms':>7} |")
    print(f"|{'-' * 44}|{'-' * 11}:|{'-' * 11}:|{'-' * 8}:|{'-' * 8}:|{'-' * 8}:|")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp) / "redis") as url:
        redis = Redis.from_url(url)
        for label, build in limiters:
            redis.flushall()
            started = time.monotonic()
            latencies, held, grown = measure(redis, build(url, redis, args.tpm), calls, args.tokens_per_call)
            if time.monotonic() - started > WINDOW_S:
                print(f"  ({label}: the calls took longer than the window; figures are a lower bound)")
            cuts = statistics.quantiles(latencies, n=20)
            print(
                f"| {label:<42} | {size(held):>10} | {size(grown):>10} | "
                f"{cuts[9] * 1e3:>7.3f} | {cuts[18] * 1e3:>7.3f} | {max(latencies) * 1e3:>7.3f} |"
            )
        redis.close()


if __name__ == "__main__":
    main()
