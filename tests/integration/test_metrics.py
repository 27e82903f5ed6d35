"""GET /metrics on the real gunicorn: after a known set of jobs, the scraped values are those counts."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Retry
from rq.suspension import resume, suspend

from feynman_jobs import redisio
from feynman_jobs.costs import ledger
from feynman_jobs.queueing.catalog import CALLBACKS
from feynman_jobs.queueing.wiring import get_queue
from tests.support import Process, enqueue, http, wait_for, wait_until

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


def _only_worker(redis: Redis) -> str:
    [key] = redis.smembers("rq:workers")
    return redisio.text(key).removeprefix("rq:worker:")


def scrape(api: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the exposition, keyed by name and labels."""
    code, headers, text = http("GET", api + "/metrics")
    assert code == 200, text
    assert headers["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_scraped_values_equal_the_known_counts(api: str, redis: Redis, worker: Process) -> None:
    done = [enqueue(api, ROLLUP) for _ in range(3)]
    for job in done:
        wait_for(api, job["id"])
    callbacks = {"on_success": CALLBACKS.on_success, "on_failure": CALLBACKS.on_failure}
    queue = get_queue("default", redis)
    failing = [
        queue.enqueue("tests.jobs.fail_always", "no retry", **callbacks),
        queue.enqueue("tests.jobs.fail_always", "one retry", retry=Retry(max=1), **callbacks),
    ]
    wait_until(
        lambda: all(job.get_status(refresh=True) == "failed" for job in failing), 60, "both jobs to fail"
    )
    for _ in range(2):
        ledger.record_call(
            redis,
            model="gpt-4o-mini",
            tokens_in=1200,
            tokens_out=300,
            usd_micros=360,
            job_id="job-1",
            job_type="analyze_conversation",
        )
    # A job's status is written a moment before its worker's state goes back to idle.
    worker_key = f"rq:worker:{_only_worker(redis)}"
    wait_until(lambda: redis.hget(worker_key, "state") == b"idle", 10, "the worker to be idle")
    samples = scrape(api)
    assert value(samples, "feynman_jobs_total", type="rollup_costs", queue="low", outcome="finished") == 3
    assert value(samples, "feynman_jobs_total", type="fail_always", queue="default", outcome="failed") == 2
    assert value(samples, "feynman_jobs_total", type="fail_always", queue="default", outcome="retried") == 1
    for name in ("feynman_job_run_seconds", "feynman_job_wait_seconds"):
        assert value(samples, name + "_count", type="rollup_costs", queue="low") == 3
        assert value(samples, name + "_bucket", type="rollup_costs", queue="low", le="+Inf") == 3
        assert value(samples, name + "_count", type="fail_always", queue="default") == 3
    assert value(samples, "feynman_workers", state="idle") == 1
    assert value(samples, "feynman_workers", state="busy") == 0
    assert value(samples, "feynman_queue_registry_jobs", queue="low", registry="finished") == 3
    assert value(samples, "feynman_queue_registry_jobs", queue="default", registry="failed") == 2
    labels = {"model": "gpt-4o-mini", "type": "analyze_conversation"}
    assert value(samples, "feynman_llm_cost_usd_total", **labels) == 0.00072
    assert value(samples, "feynman_llm_tokens_total", **labels, direction="in") == 2400
    assert value(samples, "feynman_llm_tokens_total", **labels, direction="out") == 600
    assert value(samples, "feynman_llm_calls_total", **labels) == 2
    # Every web process reads the same Redis: repeated scrapes (either gunicorn worker) agree.
    assert all(scrape(api)[key] == sample for key, sample in samples.items() if "_total" in key[0])


def test_queue_depths_waiting_age_and_pause(api: str, redis: Redis) -> None:
    waiting = [enqueue(api, {**ROLLUP, "queue": "high"}) for _ in range(2)]
    enqueue(api, {**ROLLUP, "delay_s": 3600})
    enqueue(api, {**ROLLUP, "depends_on": [waiting[0]["id"]]})
    suspend(redis)
    samples = scrape(api)
    assert value(samples, "feynman_queue_depth", queue="high") == 2
    assert value(samples, "feynman_queue_depth", queue="low") == 0
    assert value(samples, "feynman_queue_oldest_waiting_seconds", queue="high") > 0
    assert value(samples, "feynman_queue_oldest_waiting_seconds", queue="low") == 0
    assert value(samples, "feynman_queue_registry_jobs", queue="low", registry="scheduled") == 1
    assert value(samples, "feynman_queue_registry_jobs", queue="low", registry="deferred") == 1
    assert value(samples, "feynman_queues_paused") == 1
    assert value(samples, "feynman_workers", state="idle") == 0
    resume(redis)
    assert value(scrape(api), "feynman_queues_paused") == 0
