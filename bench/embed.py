"""Chunks per second of vectorize_documents run by the real worker, against the bare embedder.

Usage: .venv/bin/python -m bench.embed [--documents 200] [--per-job 1 10 50] [--lines default 16]
[--rounds 3]

Starts a throwaway redis-server, then measures in the same run: the bare embedder (embed only), the
bare pipeline (chunk, embed, upsert in this process), and for each worker line (the Procfile's, with
FEYNMAN_WORKER_CONCURRENCY unset, i.e. its default, and with 16 slots, or with one slot, a forked work
horse per job, when 16 is the default) vectorize_documents through the
worker with N documents per job, and plain RQ no-op jobs through the same worker (the queue's own cost
per job). Rows with a target are the median of `--rounds` runs, each into a fresh namespace. Prints a
table; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from bench.harness import report, wait_finished
from feynman_jobs.lifecycle import submit
from feynman_jobs.memory.vectors import RedisVectorStore
from feynman_jobs.providers.embedders import HashingProvider
from feynman_jobs.queueing.requests import parse_enqueue_request
from feynman_jobs.queueing.wiring import get_queue
from feynman_jobs.settings import DEFAULT_WORKER_CONCURRENCY, load_settings
from feynman_jobs.text.chunk import CHUNK_OVERLAP_TOKENS, CHUNK_TOKENS, chunk_text
from tests.samples import CONVERSATIONS
from tests.support import Process, redis_server, wait_until

#: From this many documents per job, vectorize_documents through the worker should reach 0.8x of the
#: bare pipeline (chunk + embed + upsert in process): the cost per job is spread over enough chunks.
TARGET_FROM_DOCUMENTS = 10
TARGET_RATIO = 0.8
CONCURRENCY = "FEYNMAN_WORKER_CONCURRENCY"
#: Beside the Procfile's default line: 16 slots, or a forking worker (1) when 16 is the default.
OTHER_LINE = "1" if DEFAULT_WORKER_CONCURRENCY == 16 else "16"


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
    wait_finished(redis, ids)
    return time.perf_counter() - start


def run_noop_jobs(redis: Redis, count: int) -> float:
    """Plain RQ: `count` jobs of a builtin that does nothing useful, through the same worker."""
    queue = get_queue("default", redis)
    start = time.perf_counter()
    ids = [queue.enqueue("builtins.len", "x").id for _ in range(count)]
    wait_finished(redis, ids)
    return time.perf_counter() - start


def line_label(line: str) -> str:
    """How a worker line shows in the table."""
    if line == "default":
        return f"worker line, {CONCURRENCY} unset ({DEFAULT_WORKER_CONCURRENCY})"
    return f"worker line, {CONCURRENCY}={line}"


def measure_line(
    redis: Redis,
    url: str,
    tmp: Path,
    line: str,
    documents: list[dict[str, Any]],
    bare: Callable[[str], float],
    args: argparse.Namespace,
) -> tuple[dict[int, list[tuple[float, float]]], float]:
    """One worker line: for each documents-per-job, (worker seconds, bare pipeline seconds) per round,
    the bare pipeline timed just before each worker run (the load of a shared machine drifts); and
    the no-op jobs' seconds."""
    env = {"REDIS_URL": url} if line == "default" else {"REDIS_URL": url, CONCURRENCY: line}
    worker = Process("worker", env, tmp / f"worker-{line}.log")
    runs: dict[int, list[tuple[float, float]]] = {}
    try:
        wait_until(lambda: bool(redis.scard("rq:workers")), 60, "the worker to register")
        for per_job in args.per_job:
            rounds = args.rounds if per_job >= TARGET_FROM_DOCUMENTS else 1
            for round_ in range(rounds):
                namespace = f"bench-{line}-{per_job}-{round_}"
                bodies = [
                    {
                        "type": "vectorize_documents",
                        "payload": {"namespace": namespace, "documents": documents[i : i + per_job]},
                    }
                    for i in range(0, len(documents), per_job)
                ]
                bare_s = bare(f"bare-{namespace}")
                runs.setdefault(per_job, []).append((run_jobs(redis, url, bodies), bare_s))
        noop_seconds = run_noop_jobs(redis, len(documents))
    finally:
        worker.stop()
    wait_until(lambda: not redis.scard("rq:workers"), 30, "the worker to deregister")
    return runs, noop_seconds


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--per-job", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--lines", nargs="+", default=["default", OTHER_LINE],
                        help=f"worker lines: default ({CONCURRENCY} unset) or a slot count")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3, help="runs per row with a target (median)")
    args = parser.parse_args()
    os.environ.pop(CONCURRENCY, None)  # the default line runs with the variable unset
    documents = corpus(args.documents)
    chunks = chunked(documents)
    total = sum(len(c) for c in chunks)
    embedder = HashingProvider()

    def embed_only() -> None:
        for document_chunks in chunks:
            embedder.embed(document_chunks)

    bare_embed = statistics.median(timed(embed_only) for _ in range(args.rounds))
    lines: dict[str, tuple[dict[int, list[tuple[float, float]]], float]] = {}
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp) / "redis") as url:
        redis = Redis.from_url(url)
        store = RedisVectorStore(redis)

        def pipeline(namespace: str) -> float:
            start = time.perf_counter()
            for doc, doc_chunks in zip(documents, chunked(documents), strict=True):
                vectors = embedder.embed(doc_chunks).vectors
                store.upsert(namespace, doc["id"], doc_chunks, vectors, model=embedder.name)
            return time.perf_counter() - start

        bare_pipeline = statistics.median(pipeline(f"bare-{n}") for n in range(args.rounds))
        for line in args.lines:
            lines[line] = measure_line(redis, url, Path(tmp), line, documents, pipeline, args)
    print_table(total, len(documents), embedder.name, bare_embed, bare_pipeline, lines)
    report("embed", {
        "chunks": total,
        "documents": len(documents),
        "target_from_documents": TARGET_FROM_DOCUMENTS,
        "lines": {
            line: {
                "label": line_label(line),
                "ratio": {str(k): ratio(v) for k, v in runs.items()},
                "runs": {str(k): v for k, v in runs.items()},
                "noop_jobs_per_s": len(documents) / noop_s,
            }
            for line, (runs, noop_s) in lines.items()
        },
    })  # fmt: skip


def ratio(runs: list[tuple[float, float]]) -> float:
    """Chunks/s through the worker over chunks/s of the bare pipeline: the median over rounds of
    bare seconds / worker seconds, each pair timed back to back."""
    return statistics.median(bare / worker for worker, bare in runs)


def print_table(
    total: int,
    count: int,
    name: str,
    bare_embed: float,
    bare_pipeline: float,
    lines: dict[str, tuple[dict[int, list[tuple[float, float]]], float]],
) -> None:
    """The table: the bare paths, then each line's rows; a line's ratio to the pipeline is against
    the bare pipeline timed just before each of its runs."""
    embed_rate = total / bare_embed
    print(f"{total} chunks in {count} documents, embedder {name}\n")
    print(f"| {'path':<62} | {'seconds':>7} | {'chunks/s':>8} | {'to embedder':>11} | {'to pipeline':>11} "
          f"| {'target':<7} |")  # fmt: skip
    print(f"|{'-' * 64}|{'-' * 8}:|{'-' * 9}:|{'-' * 12}:|{'-' * 12}:|{'-' * 9}|")

    def show(label: str, seconds: float, to_pipeline: float, target: str = "") -> None:
        rate = total / seconds
        print(f"| {label:<62} | {seconds:>7.2f} | {rate:>8.0f} | {rate / embed_rate:>10.2f}x "
              f"| {to_pipeline:>10.2f}x | {target:<7} |")  # fmt: skip

    show("bare embedder: embed only", bare_embed, bare_pipeline / bare_embed)
    show("bare pipeline: chunk + embed + upsert", bare_pipeline, 1.0)
    for line, (runs, _) in lines.items():
        for per_job, pairs in runs.items():
            jobs = -(-count // per_job)
            target = f">= {TARGET_RATIO}x" if per_job >= TARGET_FROM_DOCUMENTS else ""
            seconds = statistics.median(worker for worker, _ in pairs)
            show(f"{line_label(line)}: {per_job} doc(s)/job, {jobs} jobs", seconds, ratio(pairs), target)
    for line, (runs, noop_seconds) in lines.items():
        print(f"\nplain RQ no-op jobs through the {line_label(line)}: {count / noop_seconds:.0f} jobs/s")
        for per_job, pairs in runs.items():
            if len(pairs) > 1:
                each = ", ".join(f"{bare / worker:.2f}" for worker, bare in pairs)
                print(f"  {per_job} doc(s)/job, each round's ratio to the pipeline: {each}")


if __name__ == "__main__":
    main()
