"""Cancel is atomic and complete: a job the API called canceled never runs, a canceled or stopped
consolidation takes its follow-up with it, and a batch reaches done_fraction 1.0 once nothing of it
can run."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

from redis import Redis

from feynman_jobs import redisio
from feynman_jobs.queueing.wiring import get_queue
from tests.chat_server import FakeProvider, refuse
from tests.support import analyze_body, enqueue, http, sample, start_worker, wait_for, wait_until

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


def _consolidation(session: str, topic: str | None = None) -> dict[str, Any]:
    conversation = sample("photosynthesis_zh")
    payload = {"topic": topic or conversation["topic"], "conversation": conversation["messages"]}
    return {"type": "consolidate_memory", "payload": {**payload, "session_id": session, "learner_id": "l-1"}}


def _progress(api: str, batch_id: str) -> dict[str, Any]:
    return dict(http("GET", f"{api}/api/batches/{batch_id}")[2])


def test_a_job_the_api_called_canceled_never_runs(
    api: str, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    queue = get_queue("default", redis)
    jobs = queue.enqueue_many([queue.prepare_data("tests.jobs.record_start", (f"j{n}",)) for n in range(300)])
    tags = {job.id: f"j{n}" for n, job in enumerate(jobs)}
    workers = [start_worker(redis_url, tmp_path / f"worker-{n}.log", redis) for n in range(2)]

    def cancel(job_id: str) -> int:
        return http("POST", f"{api}/api/jobs/{job_id}/cancel")[0]

    def status(job_id: str) -> str:
        return str(http("GET", f"{api}/api/jobs/{job_id}")[2]["status"])

    try:
        # Cancels race the workers at the head of the queue.
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            answers = dict(zip(tags, pool.map(cancel, tags), strict=True))
        ended = ("finished", "canceled", "stopped")
        wait_until(lambda: all(status(i) in ended for i in tags), 120, "every job to end")
    finally:
        for worker in workers:
            worker.stop()
    starts = [redisio.text(raw) for raw in redis.lrange("test:starts", 0, -1)]
    by_answer = {code: [i for i, answer in answers.items() if answer == code] for code in (200, 202, 409)}
    assert sum(len(ids) for ids in by_answer.values()) == len(tags)
    # "canceled" (200) and yet it ran: never. Stopping (202) or already ended (409): it had started.
    assert [i for i in by_answer[200] if tags[i] in starts] == []
    assert {status(i) for i in by_answer[200]} <= {"canceled"}
    assert {status(i) for i in by_answer[202]} <= {"stopped", "finished"}
    assert {status(i) for i in by_answer[409]} <= {"finished"}
    assert len(starts) == len(set(starts))  # nothing ran twice
    assert by_answer[200]  # the race was run: some were canceled in time ...
    assert by_answer[202] or by_answer[409]  # ... and some had started


def test_a_canceled_consolidation_ends_its_follow_up_and_the_batch_completes(
    api: str, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    code, _, batch = http(
        "POST",
        api + "/api/batches?include=jobs",
        {"jobs": [_consolidation("cancel-in-batch"), analyze_body("b"), ROLLUP]},
    )
    assert code == 202, batch
    consolidation, analysis, rollup = batch["job_ids"]
    [follow_up] = batch["jobs"][0]["follow_up"]  # in the batch too: it is the consolidation's second half
    needs_success = enqueue(api, {**ROLLUP, "depends_on": [follow_up]})
    runs_anyway = enqueue(api, {**ROLLUP, "depends_on": [consolidation], "allow_failed_dependencies": True})

    code, _, canceled = http("POST", f"{api}/api/jobs/{consolidation}/cancel")
    assert (code, canceled["status"]) == (200, "canceled")
    ended = http("GET", f"{api}/api/jobs/{follow_up}")[2]
    assert ended["status"] == "canceled"
    assert ended["error"] == {
        "type": "DependencyFailed",
        "message": f"dependency {consolidation} was canceled; this job needs it to finish first",
    }
    assert http("GET", f"{api}/api/jobs/{needs_success['id']}")[2]["status"] == "canceled"
    assert _progress(api, batch["id"])["counts"] == {"canceled": 2, "queued": 2}

    worker = start_worker(redis_url, tmp_path / "worker.log", redis)
    try:
        wait_until(lambda: _progress(api, batch["id"])["done_fraction"] == 1.0, 60, "the batch to complete")
        assert wait_for(api, runs_anyway["id"])["status"] == "finished"
    finally:
        worker.stop()
    progress = _progress(api, batch["id"])
    assert (progress["total"], progress["counts"]) == (4, {"canceled": 2, "finished": 2})
    assert {http("GET", f"{api}/api/jobs/{i}")[2]["status"] for i in (analysis, rollup)} == {"finished"}


def test_stopping_a_running_consolidation_ends_its_follow_up_at_once(
    api: str, redis: Redis, redis_url: str, tmp_path: Path, provider: FakeProvider
) -> None:
    provider.script("stop-consolidation", provider.held(refuse(503)))
    # A forked horse: the stop must land while the model call is held (with slots it lands when the
    # call returns, FEYNMAN_LLM_TIMEOUT_S later: processes/deadlines.py).
    env = {
        "FEYNMAN_LLM_BASE_URL": provider.url,
        "FEYNMAN_LLM_MODEL": "test-model",
        "FEYNMAN_WORKER_CONCURRENCY": "1",
    }
    worker = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    try:
        job = _consolidation("stop-in-batch", topic="光合作用 stop-consolidation")
        batch = http("POST", api + "/api/batches?include=jobs", {"jobs": [job]})[2]
        [consolidation] = batch["job_ids"]
        [follow_up] = batch["jobs"][0]["follow_up"]
        wait_until(lambda: provider.received["stop-consolidation"] == 1, 60, "the model call")
        code, _, document = http("POST", f"{api}/api/jobs/{consolidation}/cancel")
        assert (code, document["action"]) == (202, "stopping")
        assert http("GET", f"{api}/api/jobs/{follow_up}")[2]["status"] == "canceled"
        stopped = wait_for(api, consolidation, ("stopped",))
        assert (stopped["error"]["type"], stopped["cost"]["calls"]) == ("JobStopped", 0)
        assert _progress(api, batch["id"])["done_fraction"] == 1.0
    finally:
        provider.release.set()
        worker.stop()
