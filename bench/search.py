"""Search latency of the Redis vector store: top-10 over 10k x 384 chunks, cached and uncached.

Usage: .venv/bin/python -m bench.search [--chunks 10000]

The cached path is a web process searching a namespace nothing wrote to since its last search; the
uncached path reads the whole matrix again (a fresh process, or after a write). The baseline is the
same top-10 as a bare numpy product over the matrix already in memory. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from redis import Redis

from feynman_jobs.memory.vectors import RedisVectorStore
from feynman_jobs.providers.embedders import HashingProvider
from tests.support import redis_server

PER_DOCUMENT = 100


def median_ms(work: Callable[[], object], runs: int) -> float:
    """Median milliseconds of `runs` calls."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    """Fill a namespace, then time the three ways to search it."""
    parser = argparse.ArgumentParser(description="vector store search latency")
    parser.add_argument("--chunks", type=int, default=10_000)
    args = parser.parse_args()
    embedder = HashingProvider()
    rng = np.random.default_rng(7)
    words = [f"w{n}" for n in range(5000)] + list("光合作用叶绿素惯性质量梯度下降学习率")
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp) / "redis") as url:
        redis = Redis.from_url(url)
        store = RedisVectorStore(redis)
        for doc in range(args.chunks // PER_DOCUMENT):
            chunks = [" ".join(rng.choice(words, 30)) for _ in range(PER_DOCUMENT)]
            store.upsert("bench", f"d{doc}", chunks, embedder.embed(chunks).vectors, model=embedder.name)
        query = embedder.embed(["光合作用 w42 w4242"]).vectors[0]
        raw = redis.get(store.keys("bench")[0])
        assert isinstance(raw, bytes)
        matrix = np.frombuffer(raw, dtype="<f4").reshape(-1, 384)

        def bare() -> object:
            scores = matrix @ query
            best = np.argpartition(-scores, 9)[:10]
            return best[np.argsort(-scores[best])]

        rows = [
            (
                "bare numpy float32 top-10, in memory",
                median_ms(bare, 200),
            ),
            (
                "store.search top-10, cached",
                median_ms(lambda: store.search("bench", query, 10, model=embedder.name), 200),
            ),
            (
                "store.search top-10, uncached",
                median_ms(
                    lambda: RedisVectorStore(redis).search("bench", query, 10, model=embedder.name), 20
                ),
            ),
        ]
    print(f"{matrix.shape[0]} chunks x {matrix.shape[1]} dims\n")
    print(f"| {'search':<38} | {'median ms':>9} | {'ratio to bare':>13} |")
    print(f"|{'-' * 40}|{'-' * 10}:|{'-' * 14}:|")
    for label, ms in rows:
        print(f"| {label:<38} | {ms:>9.2f} | {ms / rows[0][1]:>13.1f} |")


if __name__ == "__main__":
    main()
