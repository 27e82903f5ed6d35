"""Job control through the real API and real workers: batches, idempotency, dependencies, delays,
cancel, stop, requeue, list, pause, queues and stats."""

from __future__ import annotations

import concurrent.futures
from datetime import datetime
from pathlib import Path

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.memory.records import save_memory
from feynman_jobs.queueing.catalog import CALLBACKS
from feynman_jobs.queueing.wiring import fetch_job, get_queue
from tests.support import SLOTS_AND_FORKING, Process, analyze_body, enqueue, http, wait_for, wait_until

ROLLUP = {"type": "rollup_costs", "payload": {"granularity": "hour"}}


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _stamp(stamp: str) -> str:
    """A status document's time as the timeline writes it."""
    return _at(stamp).isoformat(timespec="microseconds")


def test_a_batch_of_200_reaches_100_percent(api: str, worker: Process) -> None:
    jobs = [analyze_body(f"b-{i}") if i % 4 == 0 else ROLLUP for i in range(200)]
    code, headers, batch = http("POST", api + "/api/batches", {"jobs": jobs})
    assert code == 202, batch
    assert len(batch["job_ids"]) == 200
    assert headers["Location"] == f"/api/batches/{batch['id']}"
    assert set(batch) == {"id", "job_ids"}  # the status documents only with ?include=jobs
    assert http("GET", f"{api}/api/jobs/{batch['job_ids'][-1]}")[2]["batch_id"] == batch["id"]

    def done() -> bool:
        return bool(http("GET", api + headers["Location"])[2]["done_fraction"] == 1.0)

    wait_until(done, 120, "the batch to finish", interval=0.5)
    progress = http("GET", api + headers["Location"])[2]
    assert progress["total"] == 200
    assert progress["counts"] == {"finished": 200}
    assert progress["done"] == 200


def test_a_batch_with_one_bad_job_enqueues_nothing(api: str, redis: Redis) -> None:
    bad = {"type": "rollup_costs", "payload": {"granularity": "week"}}
    code, _, problem = http(
        "POST", api + "/api/batches", {"jobs": [ROLLUP, bad, ROLLUP, {"type": "nope", "payload": {}}]}
    )
    assert code == 422
    assert [error["pointer"] for error in problem["errors"]] == [
        "#/jobs/1/payload/granularity",
        "#/jobs/3/type",
    ]
    assert redis.llen("rq:queue:low") == 0
    assert not redis.keys("rq:job:*")
    code, _, problem = http("POST", api + "/api/batches?include=everything", {"jobs": [ROLLUP]})
    assert (code, [error["pointer"] for error in problem["errors"]]) == (422, ["#/query/include"])
    assert not redis.keys("rq:job:*")


def test_fifty_concurrent_identical_requests_make_one_job(api: str, redis: Redis) -> None:
    body = {**ROLLUP, "idempotency_key": "nightly-2026-11-23"}
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: http("POST", api + "/api/jobs", body), range(50)))
    assert sorted({code for code, _, _ in answers}) in ([200, 202], [202])
    assert [code for code, _, _ in answers].count(202) == 1
    assert len({document["id"] for _, _, document in answers}) == 1
    assert redis.llen("rq:queue:low") == 1
    # The header is the same key.
    code, _, again = http("POST", api + "/api/jobs", ROLLUP, {"Idempotency-Key": "nightly-2026-11-23"})
    assert (code, again["id"]) == (200, answers[0][2]["id"])


def test_a_dependency_chain_runs_in_order(api: str, worker: Process) -> None:
    first = enqueue(api, analyze_body("chain-1"))
    second = enqueue(api, {**analyze_body("chain-2"), "depends_on": [first["id"]]})
    third = enqueue(api, {**ROLLUP, "depends_on": [second["id"], first["id"]]})
    assert second["status"] in ("deferred", "queued")
    assert third["status"] in ("deferred", "queued")
    done = [wait_for(api, job["id"]) for job in (first, second, third)]
    assert _at(done[0]["ended_at"]) <= _at(done[1]["started_at"])
    assert _at(done[1]["ended_at"]) <= _at(done[2]["started_at"])


def test_a_failed_dependency_ends_its_dependent_unless_allowed(
    api: str, worker: Process, redis_url: str, tmp_path: Path
) -> None:
    scheduler = Process("scheduler", {"REDIS_URL": redis_url}, tmp_path / "scheduler.log")
    try:
        failing = enqueue(
            api,
            {
                "type": "vectorize_documents",
                "payload": {"memory_id": "absent", "learner_id": "l-1"},
                "max_retries": 0,
            },
        )
        ended = enqueue(api, {**ROLLUP, "depends_on": [failing["id"]]})
        after_ended = enqueue(api, {**ROLLUP, "depends_on": [ended["id"]]})
        allowed = enqueue(api, {**ROLLUP, "depends_on": [failing["id"]], "allow_failed_dependencies": True})
        wait_for(api, failing["id"], ("failed",))
        assert wait_for(api, allowed["id"])["status"] == "finished"
        # Instead of waiting forever, the dependent that needed success is canceled, saying why; and so
        # is what waited for it.
        canceled = wait_for(api, ended["id"], ("canceled",), timeout=60)
        assert canceled["error"] == {
            "type": "DependencyFailed",
            "message": f"dependency {failing['id']} failed; this job needs it to finish first",
        }
        next_canceled = wait_for(api, after_ended["id"], ("canceled",), timeout=60)
        assert next_canceled["error"]["message"].startswith(f"dependency {ended['id']} was canceled")
    finally:
        scheduler.stop()


def test_a_delayed_job_does_not_start_early(api: str, worker: Process) -> None:
    job = enqueue(api, {**ROLLUP, "delay_s": 3})
    assert job["status"] == "scheduled"
    done = wait_for(api, job["id"], timeout=30)
    assert (_at(done["started_at"]) - _at(done["created_at"])).total_seconds() >= 3


def test_cancel_in_each_waiting_state_and_409_once_ended(api: str, redis: Redis) -> None:
    queued = enqueue(api, ROLLUP)
    scheduled = enqueue(api, {**ROLLUP, "delay_s": 3600})
    deferred = enqueue(api, {**ROLLUP, "depends_on": [scheduled["id"]]})
    for job, was in ((deferred, "deferred"), (queued, "queued"), (scheduled, "scheduled")):
        assert job["status"] == was
        code, _, document = http("POST", f"{api}/api/jobs/{job['id']}/cancel")
        assert (code, document["status"], document["action"]) == (200, "canceled", "canceled")
        assert document["error"] == {"type": "JobCanceled", "message": "canceled on request"}
        # A canceled job is kept as long as a failed one, then expires.
        assert 0 < int(redis.ttl(f"rq:job:{job['id']}")) <= 30 * 24 * 3600
    assert redis.llen("rq:queue:low") == 0
    assert redis.zcard("rq:scheduled:low") == redis.zcard("rq:deferred:low") == 0
    code, _, problem = http("POST", f"{api}/api/jobs/{queued['id']}/cancel")
    assert code == 409
    assert problem["type"] == "urn:feynman-jobs:problem:job-state-conflict"
    assert http("POST", f"{api}/api/jobs/nope/cancel")[0] == 404


@SLOTS_AND_FORKING
def test_a_running_job_is_stopped(api: str, worker: Process, redis: Redis) -> None:
    slow = get_queue("default", redis).enqueue(
        "tests.jobs.sleep_for", 60, on_stopped=CALLBACKS.on_stopped, on_failure=CALLBACKS.on_failure
    )
    wait_for(api, slow.id, ("started",))
    worker_name = http("GET", api + "/api/workers")[2]["workers"][0]["name"]

    def timeline(job_id: str) -> list[tuple[str, str | None, str | None]]:
        events = http("GET", f"{api}/api/jobs/{job_id}/events")[2]["events"]
        return [(event["event"], event["at"], event.get("worker")) for event in events]

    wait_until(lambda: len(timeline(slow.id)) == 2, 5, "the running attempt in the timeline")
    started = ("started", timeline(slow.id)[1][1], worker_name)
    assert timeline(slow.id) == [("enqueued", timeline(slow.id)[0][1], None), started]
    code, _, document = http("POST", f"{api}/api/jobs/{slow.id}/cancel")
    assert (code, document["action"]) == (202, "stopping")
    stopped = wait_for(api, slow.id, ("stopped",), timeout=20)
    assert stopped["error"]["type"] == "JobStopped"
    assert timeline(slow.id)[1] == started  # written by the stop, the same start as while it ran
    assert [event for event, _, _ in timeline(slow.id)] == ["enqueued", "started", "stopped"]
    quick = get_queue("default", redis).enqueue("tests.jobs.sleep_for", 0)
    done = wait_for(api, quick.id)
    # A finished attempt's start and end are the status document's own.
    assert timeline(quick.id)[1:] == [
        ("started", _stamp(done["started_at"]), worker_name),
        ("finished", _stamp(done["ended_at"]), None),
    ]


def test_requeue_runs_a_failed_job_again(api: str, worker: Process, redis: Redis) -> None:
    job = enqueue(
        api,
        {
            "type": "vectorize_documents",
            "payload": {"memory_id": "later", "learner_id": "l-1"},
            "max_retries": 0,
        },
    )
    failed = wait_for(api, job["id"], ("failed",))
    code, _, listed = http("GET", f"{api}/api/jobs?status=failed")
    assert code == 200
    assert [item["id"] for item in listed["jobs"]] == [job["id"]]
    save_memory(
        redis,
        {
            "id": "later",
            "learner_id": "l-1",
            "topic": "TCP",
            "summary": "Slow start doubles the window.",
            "key_points": [],
            "open_questions": [],
        },
    )
    code, _, requeued = http("POST", f"{api}/api/jobs/{job['id']}/requeue")
    assert (code, requeued["status"]) == (202, "queued")
    finished = wait_for(api, job["id"])
    assert finished["attempts"] == failed["attempts"] + 1 == 2
    assert http("POST", f"{api}/api/jobs/{job['id']}/requeue")[0] == 409
    events = http("GET", f"{api}/api/jobs/{job['id']}/events")[2]["events"]
    assert [event["event"] for event in events] == [
        "enqueued", "started", "attempt_failed", "failed", "requeued", "started", "finished",
    ]  # fmt: skip
    assert events[4]["was"] == "failed"
    assert redis.ttl(keys.job_events(job["id"])) > 0  # it expires with the job once it has ended


def test_list_is_newest_first_filtered_and_stable_under_new_jobs(api: str, redis: Redis) -> None:
    ids = [enqueue(api, ROLLUP)["id"] for _ in range(7)]
    analysis = enqueue(api, analyze_body("listed"))["id"]
    code, _, page = http("GET", f"{api}/api/jobs?type=rollup_costs&limit=4")
    assert code == 200
    assert [job["id"] for job in page["jobs"]] == ids[::-1][:4]
    for _ in range(3):
        enqueue(api, ROLLUP)
    rest = http("GET", f"{api}/api/jobs?type=rollup_costs&limit=4&cursor={page['next_cursor']}")[2]
    assert [job["id"] for job in rest["jobs"]] == ids[::-1][4:]
    assert [job["id"] for job in http("GET", f"{api}/api/jobs?queue=high")[2]["jobs"]] == [analysis]
    assert http("GET", f"{api}/api/jobs?status=started")[2]["jobs"] == []
    code, _, problem = http("GET", f"{api}/api/jobs?status=sleeping&colour=red")
    assert code == 422
    assert {error["pointer"] for error in problem["errors"]} == {"#/query/status", "#/query/colour"}


def test_pause_holds_new_jobs_and_resume_releases_them(api: str, worker: Process, redis: Redis) -> None:
    code, _, paused = http("POST", api + "/api/queues/pause", {})
    assert (code, paused["paused"]) == (200, True)
    held = [enqueue(api, ROLLUP)["id"] for _ in range(3)]
    wait_until(
        lambda: "paused; job" in worker.log() or "suspended" in worker.log(), 10, "the worker to notice"
    )
    # A worker that was already waiting when the pause began may take one job and hand it back at once.
    wait_until(lambda: redis.llen(keys.rq_queue("low")) == 3, 10, "every held job to be in its queue")
    for _ in range(20):  # two seconds in which an idle worker would have taken them
        assert all(http("GET", f"{api}/api/jobs/{job_id}")[2]["status"] == "queued" for job_id in held)
        redis.ping()
    queues = {row["name"]: row for row in http("GET", api + "/api/queues")[2]["queues"]}
    assert queues["low"]["depth"] == 3
    code, _, resumed = http("POST", api + "/api/queues/resume")
    assert resumed["paused"] is False
    for job_id in held:
        wait_for(api, job_id)


def test_a_timed_pause_ends_by_itself(api: str, redis: Redis) -> None:
    code, _, paused = http("POST", api + "/api/queues/pause", {"duration_s": 30})
    assert (code, paused["paused"]) == (200, True)
    assert 0 < paused["pause_remaining_s"] <= 30
    assert http("POST", api + "/api/queues/pause", {"duration_s": 0})[0] == 422
    http("POST", api + "/api/queues/resume")


def test_queues_and_stats_report_what_ran(api: str, worker: Process) -> None:
    for job in [enqueue(api, ROLLUP) for _ in range(3)] + [enqueue(api, analyze_body("stats"))]:
        wait_for(api, job["id"])
    failing = enqueue(
        api,
        {"type": "vectorize_documents", "payload": {"memory_id": "x", "learner_id": "l-1"}, "max_retries": 0},
    )
    wait_for(api, failing["id"], ("failed",))
    queues = {row["name"]: row for row in http("GET", api + "/api/queues")[2]["queues"]}
    assert queues["low"]["finished"] == 3
    assert queues["high"]["finished"] == 1
    assert queues["default"]["failed"] == 1
    stats = http("GET", api + "/api/stats?window=600")[2]
    assert stats["by_type"]["rollup_costs"]["finished"] == 3
    assert stats["by_type"]["vectorize_documents"]["failed"] == 1
    assert stats["total"]["success_rate"] == 0.8
    assert stats["by_queue"]["low"]["run_s"]["p95"] >= stats["by_queue"]["low"]["run_s"]["p50"] >= 0
    assert http("GET", api + "/api/stats?window=0")[0] == 422


def test_a_batch_of_known_idempotency_keys_returns_the_same_jobs(api: str, redis: Redis) -> None:
    jobs = [{**ROLLUP, "idempotency_key": f"k-{n}"} for n in range(3)]
    first = http("POST", api + "/api/batches", {"jobs": jobs})[2]
    code, _, again = http("POST", api + "/api/batches", {"jobs": jobs})
    assert code == 202
    assert again["job_ids"] == first["job_ids"]
    assert http("GET", f"{api}/api/batches/{again['id']}")[2]["total"] == 3
    assert len(redis.keys("rq:job:*")) == 3


def test_a_key_repeated_inside_one_batch_is_refused_naming_both_positions(api: str, redis: Redis) -> None:
    jobs = [{**ROLLUP, "idempotency_key": key} for key in ("k-1", "k-2", "k-1")]
    code, _, problem = http("POST", api + "/api/batches", {"jobs": jobs})
    assert code == 422
    [error] = problem["errors"]
    assert error["pointer"] == "#/jobs/2/idempotency_key"
    assert "#/jobs/0" in error["detail"]
    assert not redis.keys("rq:job:*")
    assert not redis.keys("feynman:idem:*")


def test_a_key_whose_job_is_gone_makes_a_new_job_at_once(api: str, redis: Redis) -> None:
    first = enqueue(api, {**ROLLUP, "idempotency_key": "weekly"})
    fetch_job(first["id"], redis).delete()  # as the dashboard's delete does
    second = enqueue(api, {**ROLLUP, "idempotency_key": "weekly"})  # 202, not a 5 s wait and a 409
    assert second["id"] != first["id"]
    assert enqueue(api, {**ROLLUP, "idempotency_key": "weekly"}, status=200)["id"] == second["id"]
