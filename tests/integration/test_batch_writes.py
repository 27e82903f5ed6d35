"""A batch's jobs, written one Lua script per queue (queueing/bulk.py), are the jobs a single enqueue
writes: the same hash field by field, the same queue order, readable by RQ."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from redis import Redis
from rq import Queue
from rq.job import JobStatus

from feynman_jobs.lifecycle import submit
from feynman_jobs.queueing import bulk
from feynman_jobs.queueing.catalog import EVERYONE
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.queueing.wiring import JsonJob, fetch_job, get_queue
from feynman_jobs.settings import load_settings

CONVERSATION = [{"role": "user", "content": "光合作用把光能变成化学能。"}]
BODIES: dict[str, dict[str, Any]] = {
    "rollup_costs": {"type": "rollup_costs", "payload": {"granularity": "hour"}},
    "analyze_conversation": {
        "type": "analyze_conversation",
        "payload": {"session_id": "s-1", "topic": "光合作用", "conversation": CONVERSATION},
        "meta": {"class": "7b"},
    },
    # Alone on its queue in the batch below: written by RQ's commands as they are, not by the script.
    "consolidate_memory": {
        "type": "consolidate_memory",
        "payload": {
            "topic": "光合作用",
            "conversation": CONVERSATION,
            "learner_id": "l-1",
            "session_id": "s-1",
        },
    },
}
#: What differs from job to job of the same request: when it was made, and the batch it belongs to.
PER_JOB = {"created_at", "enqueued_at", "meta"}
NOOP = "tests.jobs.record_start"


def _hash(redis: Redis, job_id: str) -> dict[str, bytes]:
    stored: dict[bytes, bytes] = redis.hgetall(JsonJob.key_for(job_id))  # type: ignore[assignment]
    return {field.decode(): value for field, value in stored.items()}


def _commands(redis: Redis) -> dict[str, int]:
    return {name: int(stats["calls"]) for name, stats in redis.info("commandstats").items()}


def test_a_batch_writes_the_hashes_and_queues_a_single_enqueue_writes(redis: Redis, redis_url: str) -> None:
    settings = load_settings(redis_url=redis_url)
    requests = {name: EnqueueRequest.model_validate(body) for name, body in BODIES.items()}
    single = {
        name: _hash(redis, submit.submit(redis, settings, request, audiences=EVERYONE).job.id)
        for name, request in requests.items()
    }
    redis.flushall()
    order = ["rollup_costs", "analyze_conversation", "rollup_costs", "consolidate_memory"]
    order += ["analyze_conversation", "rollup_costs"]
    before = _commands(redis)
    batch_id, submitted = submit.submit_batch(
        redis, settings, [requests[name] for name in order], audiences=EVERYONE
    )
    after = _commands(redis)
    ids = [item.job.id for item in submitted]

    for name, job_id in zip(order, ids, strict=True):
        written = _hash(redis, job_id)
        assert set(written) == set(single[name]), name
        for field in set(written) - PER_JOB:
            assert written[field] == single[name][field], (name, field)
        meta, single_meta = json.loads(written["meta"]), json.loads(single[name]["meta"])
        follow_ups = [f"{job_id}-vectorize_documents"] if single_meta["follow_up"] else []
        assert meta == {**single_meta, "batch_id": batch_id, "follow_up": follow_ups}
        assert written["status"] == b"queued"
        for field in ("created_at", "enqueued_at"):
            datetime.fromisoformat(written[field].decode())
        job = fetch_job(job_id, redis)  # RQ reads it back whole
        assert (job.get_status(), job.meta["batch_id"]) == (JobStatus.QUEUED, batch_id)

    def queued(queue: str) -> list[str]:
        return Queue(queue, connection=redis).get_job_ids()

    assert queued("low") == [ids[0], ids[2], ids[5]]  # in the order sent
    assert queued("high") == [ids[1], ids[4]]
    assert queued("default") == [ids[3]]  # the follow-up waits, deferred on it
    follow_up = f"{ids[3]}-vectorize_documents"
    assert redis.hget(JsonJob.key_for(follow_up), "status") == b"deferred"
    assert redis.lrange(f"feynman:batch:{batch_id}", 0, -1) == [
        job_id.encode() for job_id in [*ids[:4], follow_up, *ids[4:]]
    ]
    # The five jobs of `low` and `high` went in two scripts (one HSET each, one RPUSH per queue); the
    # consolidation, alone on `default`, and its deferred follow-up as RQ writes them.
    calls = {
        name: after[f"cmdstat_{name}"] - before.get(f"cmdstat_{name}", 0)
        for name in ("eval", "hset", "rpush")
    }
    # RQ's commands would be 13 HSET (status, then the hash, per job; one for the deferred follow-up)
    # and 7 RPUSH (one per queued job, one for the batch's list).
    assert calls == {"eval": 2, "hset": 5 + 2 + 1, "rpush": 2 + 1 + 1}


def test_writes_other_than_a_plain_enqueue_are_made_as_rq_makes_them_in_order(redis: Redis) -> None:
    queue = get_queue("default", redis)
    # j2 and j3 carry meta (one more field: another shape); j6 expires (RQ adds EXPIREs) and j7 goes
    # to the front (LPUSH): those two are replayed as recorded, the others folded two by two.
    jobs = [
        queue.create_job(
            NOOP,
            args=["t"],
            job_id=f"j{i}",
            meta={"n": i} if i in (2, 3) else None,
            ttl=60 if i == 6 else None,
        )
        for i in range(8)
    ]
    with redis.pipeline() as pipe:
        writer = bulk.BulkWriter(pipe)
        for job in jobs:
            recorder = bulk.Recorder()
            queue._enqueue_job(job, pipeline=recorder.as_pipeline(), at_front=job.id == "j7")
            writer.add(recorder)
        writer.flush()
        scripts = [args for args, _ in pipe.command_stack if args[0] == "EVAL"]
        pipe.execute()
    assert len(scripts) == 3  # j0-j1, j2-j3, j4-j5
    assert queue.get_job_ids() == ["j7", "j0", "j1", "j2", "j3", "j4", "j5", "j6"]
    assert (redis.ttl(JsonJob.key_for("j6")), redis.ttl(JsonJob.key_for("j1"))) == (60, -1)
    assert fetch_job("j3", redis).meta == {"n": 3}
    queue._enqueue_job(queue.create_job(NOOP, args=["t"], job_id="plain"))
    expected = _hash(redis, "plain")
    same = set(expected) - PER_JOB
    for job in jobs:
        written = _hash(redis, job.id)
        assert set(written) - {"ttl", "meta"} == set(expected), job.id
        assert {f: written[f] for f in same} == {f: expected[f] for f in same}, job.id
