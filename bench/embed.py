"""Chunks per second of vectorize_documents run by the real worker, against the bare embedder.

Usage: .venv/bin/python -m bench.embed [--documents 200] [--per-job 1 10 50]

Starts a throwaway redis-server and the Procfile's worker, then measures in the same run:
the bare embedder (embed only), the bare pipeline (chunk, embed, upsert in this process),
vectorize_documents through the worker with N documents per job, and plain RQ no-op jobs
(the queue's own cost per job). Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis
from rq.job import JobStatus

from feynman_jobs.lifecycle import submit
from feynman_jobs.memory.vectors import RedisVectorStore
from feynman_jobs.providers.embedders import HashingProvider
from feynman_jobs.queueing.requests import parse_enqueue_request
from feynman_jobs.queueing.wiring import fetch_job, get_queue
from feynman_jobs.settings import load_settings
from feynman_jobs.text.chunk import CHUNK_OVERLAP_TOKENS, CHUNK_TOKENS, chunk_text
from tests.samples import CONVERSATIONS
from tests.support import Process, redis_server, wait_until

#: From this many documents per job, vectorize_documents through the worker should reach 0.8x of the
#: bare pipeline (chunk + embed + upsert in process): the cost per job is spread over enough chunks.
TARGET_FROM_DOCUMENTS = 10


def corpus(count: int) -> list[dict[str, Any]]:
    """Documents of Chinese, English and mixed text, a few chunks each, all different."""
    sources = ["\n".join(m["content"] for m in conversation) for conversation in CONVERSATIONS.values()]
    return [
        {"id": f"doc-{n}", "text": f"文档{n} document {n}.\n" + sources[n % len(sources)] * 2}
        for n in range(count)
    ]


def chunked(documents: list[dict[str, Any]]) -> list[list[str]]:
    """The chunks vectorize_documents makes of each document."""
    return [
        chunk_text(doc["text"], max_tokens=CHUNK_TOKENS, overlap_tokens=CHUNK_OVERLAP_TOKENS)
        for doc in documents
    ]


def timed(work: Callable[[], None]) -> float:
    """Seconds `work` takes."""
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run_jobs(redis: Redis, url: str, bodies: list[dict[str, Any]]) -> float:
    """Enqueue catalog jobs through the producer and wait until every one has finished."""
    settings = load_settings(redis_url=url)
    start = time.perf_counter()
    ids = [submit.submit(redis, settings, parse_enqueue_request(body)).job.id for body in bodies]
    _wait_finished(redis, ids)
    return time.perf_counter() - start


def run_noop_jobs(redis: Redis, count: int) -> float:
    """Plain RQ: `count` jobs of a builtin that does nothing useful, through the same worker."""
    queue = get_queue("default", redis)
    start = time.perf_counter()
    ids = [queue.enqueue("builtins.len", "x").id for _ in range(count)]
    _wait_finished(redis, ids)
    return time.perf_counter() - start


def _wait_finished(redis: Redis, ids: list[str]) -> None:
    def done() -> bool:
        status = fetch_job(ids[-1], redis).get_status(refresh=True)
        if status == JobStatus.FAILED:
            raise RuntimeError(f"job {ids[-1]} failed")
        return status == JobStatus.FINISHED

    wait_until(done, 600, "the last job to finish", interval=0.01)
    assert all(fetch_job(job_id, redis).get_status() == JobStatus.FINISHED for job_id in ids)


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--per-job", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    documents = corpus(args.documents)
    chunks = chunked(documents)
    total = sum(len(c) for c in chunks)
    embedder = HashingProvider()
    rows: list[tuple[str, int, float]] = []

    def embed_only() -> None:
        for document_chunks in chunks:
            embedder.embed(document_chunks)

    rows.append(("bare embedder: embed only", total, timed(embed_only)))
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp) / "redis") as url:
        redis = Redis.from_url(url)
        store = RedisVectorStore(redis)

        def pipeline() -> None:
            for doc, doc_chunks in zip(documents, chunked(documents), strict=True):
                vectors = embedder.embed(doc_chunks).vectors
                store.upsert("bare", doc["id"], doc_chunks, vectors, model=embedder.name)

        rows.append(("bare pipeline: chunk + embed + upsert", total, timed(pipeline)))
        worker = Process("worker", {"REDIS_URL": url}, Path(tmp) / "worker.log")
        try:
            wait_until(lambda: bool(redis.scard("rq:workers")), 60, "the worker to register")
            for per_job in args.per_job:
                bodies = [
                    {
                        "type": "vectorize_documents",
                        "payload": {"namespace": f"bench-{per_job}", "documents": documents[i : i + per_job]},
                    }
                    for i in range(0, len(documents), per_job)
                ]
                label = f"worker: vectorize_documents, {per_job} doc(s)/job, {len(bodies)} jobs"
                rows.append((label, total, run_jobs(redis, url, bodies)))
            noop_seconds = run_noop_jobs(redis, len(documents))
        finally:
            worker.stop()
    bare, bare_pipeline = (rows[0][1] / rows[0][2]), (rows[1][1] / rows[1][2])
    print(f"{total} chunks in {len(documents)} documents, embedder {embedder.name}\n")
    print(f"| {'path':<58} | {'seconds':>8} | {'chunks/s':>9} | {'to embedder':>11} | {'to pipeline':>11} "
          f"| {'target':<16} |")  # fmt: skip
    print(f"|{'-' * 60}|{'-' * 10}:|{'-' * 10}:|{'-' * 12}:|{'-' * 12}:|{'-' * 18}|")
    for (label, count, seconds), per_job in zip(rows, [0, 0, *args.per_job], strict=True):
        rate = count / seconds
        target = ">= 0.8x pipeline" if per_job >= TARGET_FROM_DOCUMENTS else ""
        ratios = f"{rate / bare:>10.2f}x | {rate / bare_pipeline:>10.2f}x"
        print(f"| {label:<58} | {seconds:>8.3f} | {rate:>9.0f} | {ratios} | {target:<16} |")
    print(
        f"\nplain RQ baseline: {len(documents)} no-op jobs through the same worker in {noop_seconds:.2f} s "
        f"= {len(documents) / noop_seconds:.0f} jobs/s"
    )


if __name__ == "__main__":
    main()
