"""Popped-but-not-started jobs, on a real Redis (the moves are Lua): every pop is recorded, a waiting pop
is woken by a job in any queue, a start is a claim, and a lost worker's pops go back to the front of
their queues."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq.job import Job

from feynman_jobs import keys
from feynman_jobs.errors import WorkersPaused
from feynman_jobs.lifecycle import cancellation
from feynman_jobs.processes.popping import PoppingQueue
from feynman_jobs.queueing import pending
from feynman_jobs.queueing.wiring import QUEUE_NAMES, get_queue

QUEUES = [keys.rq_queue(name) for name in QUEUE_NAMES]


def _job(redis: Redis, queue: str, tag: str) -> Job:
    return get_queue(queue, redis).enqueue("tests.jobs.record_start", tag)


STARTED_AT = "2026-12-02T17:00:00.000001Z"


def _popped(redis: Redis, worker: str) -> list[str]:
    return [raw.decode() for raw in redis.lrange(keys.worker_popped(worker), 0, -1)]  # type: ignore[union-attr]


def test_a_pop_takes_the_first_queue_first_and_records_who_took_it(redis: Redis) -> None:
    low, high = _job(redis, "low", "l"), _job(redis, "high", "h")
    assert pending.pop(redis, "w1", QUEUES, None) == (keys.rq_queue("high"), high.id)
    assert _popped(redis, "w1") == [high.id]
    assert redis.llen(keys.rq_queue("high")) == 0
    assert pending.claim(redis, "w1", high.id, STARTED_AT)
    started = redis.hmget(high.key, ["status", "worker_name", "started_at"])
    assert started == [b"started", b"w1", STARTED_AT.encode()]  # the timeline's `started` reads these
    assert _popped(redis, "w1") == []
    assert not pending.claim(redis, "w1", high.id, "2026-12-02T18:00:00.000000Z")  # claimed once only
    assert redis.hget(high.key, "started_at") == STARTED_AT.encode()  # and a refused claim writes nothing
    assert pending.pop(redis, "w1", QUEUES, None) == (keys.rq_queue("low"), low.id)
    assert pending.claim(redis, "w1", low.id, STARTED_AT)
    assert pending.pop(redis, "w1", QUEUES, None) is None


def test_a_job_canceled_after_its_pop_is_never_claimed(redis: Redis) -> None:
    job = _job(redis, "default", "c")
    pending.pop(redis, "w1", QUEUES, None)
    assert cancellation.cancel(redis, job.id).action == "canceled"
    assert not pending.claim(redis, "w1", job.id, STARTED_AT)
    assert redis.hget(job.key, "status") == b"canceled"
    assert _popped(redis, "w1") == []


def test_a_lost_worker_s_pops_go_back_to_the_front_of_their_queues(redis: Redis) -> None:
    first, second, canceled, later = (_job(redis, "default", tag) for tag in ("1", "2", "x", "later"))
    for worker in ("lost-1", "lost-2", "lost-3"):  # each popped one job; none had its key any more
        pending.pop(redis, worker, QUEUES, None)
    cancellation.cancel(redis, canceled.id)
    redis.hset(keys.rq_worker("alive"), "last_heartbeat", "now")
    pending.pop(redis, "alive", QUEUES, None)  # takes `later`: its worker is alive, so it stays taken
    assert pending.recover(redis) == {"lost-1": [first.id], "lost-2": [second.id]}
    assert set(redis.lrange(keys.rq_queue("default"), 0, -1)) == {first.id.encode(), second.id.encode()}
    assert _popped(redis, "alive") == [later.id]
    assert pending.recover(redis) == {}  # once only
    assert redis.smembers(keys.WORKERS_WITH_POPPED) == {b"alive"}
    assert redis.hget(canceled.key, "status") == b"canceled"  # a canceled pop is dropped, not put back


def test_a_pop_whose_reply_was_lost_goes_back_before_the_next_pop(redis: Redis) -> None:
    job = _job(redis, "high", "lost-reply")
    redis.lmove(
        keys.rq_queue("high"), keys.worker_popped("w1")
    )  # the move happened, the reply did not arrive
    assert pending.pop(redis, "w1", QUEUES, None) == (keys.rq_queue("high"), job.id)
    assert _popped(redis, "w1") == [job.id]
    assert redis.llen(keys.rq_queue("high")) == 0


def test_a_waiting_pop_is_woken_by_a_job_in_any_queue_and_leaves_the_queue_as_it_was(
    redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a wake the pop would look again only after BLOCK_S: 60 s here, longer than the join.
    monkeypatch.setattr(pending, "BLOCK_S", 60.0)
    found: list[tuple[str, str] | None] = []
    waiting = threading.Thread(target=lambda: found.append(pending.pop(redis, "w1", QUEUES, 30)))
    waiting.start()
    time.sleep(0.3)
    # A lower queue: the watchers (queueing/arrivals.py) wake the pop; RPUSH of three at once.
    jobs = [get_queue("low", redis).create_job("tests.jobs.record_start", args=(tag,)) for tag in "abc"]
    with redis.pipeline() as pipe:
        for job in jobs:
            job.save(pipeline=pipe)
        pipe.rpush(keys.rq_queue("low"), *(job.id for job in jobs))
        pipe.execute()
    waiting.join(10)
    assert found == [(keys.rq_queue("low"), jobs[0].id)]
    assert _popped(redis, "w1") == [jobs[0].id]
    # The watchers' BLMOVE moves a list's last element to its own tail: order and contents unchanged.
    assert redis.lrange(keys.rq_queue("low"), 0, -1) == [jobs[1].id.encode(), jobs[2].id.encode()]
    assert pending.claim(redis, "w1", jobs[0].id, STARTED_AT)
    monkeypatch.setattr(pending, "BLOCK_S", 0.5)
    for job in jobs[1:]:
        assert pending.pop(redis, "w1", QUEUES, 0.6) == (keys.rq_queue("low"), job.id)
        assert pending.claim(redis, "w1", job.id, STARTED_AT)
    assert pending.pop(redis, "w1", QUEUES, 0.6) is None


def test_a_hand_back_puts_the_job_first_in_line_if_still_ours(redis: Redis) -> None:
    job, other = _job(redis, "default", "mine"), _job(redis, "default", "next")
    pending.pop(redis, "w1", QUEUES, None)
    assert pending.hand_back(redis, "w1", job.id, keys.rq_queue("default"))
    assert redis.lrange(keys.rq_queue("default"), 0, -1) == [job.id.encode(), other.id.encode()]
    assert not pending.hand_back(redis, "w1", job.id, keys.rq_queue("default"))
    assert redis.llen(keys.rq_queue("default")) == 2
    # A job canceled between the pop and the hand-back is forgotten, not put back in the queue.
    pending.pop(redis, "w1", QUEUES, None)
    assert cancellation.cancel(redis, job.id).action == "canceled"
    assert not pending.hand_back(redis, "w1", job.id, keys.rq_queue("default"))
    assert redis.lrange(keys.rq_queue("default"), 0, -1) == [other.id.encode()]
    assert _popped(redis, "w1") == []


class _LostReplies(Redis):
    """A connection whose scripts run on the server but whose replies never arrive."""

    def eval(self, *args: Any, **kwargs: Any) -> Any:
        super().eval(*args, **kwargs)
        raise RedisConnectionError("reply lost")


def _lranges(redis: Redis) -> int:
    return int(redis.info("commandstats").get("cmdstat_lrange", {}).get("calls", 0))


def test_a_worker_skips_the_put_back_only_while_it_knows_its_popped_list_is_empty(redis: Redis) -> None:
    queue: type[PoppingQueue] = type("Q", (PoppingQueue,), {"worker_name": "w9"})
    first = _job(redis, "high", "first")
    lossy = _LostReplies(connection_pool=redis.connection_pool)
    with pytest.raises(RedisConnectionError):
        queue.lpop(QUEUES, None, connection=lossy)
    assert _popped(redis, "w9") == [first.id]
    assert not queue.popped_empty
    # Not known empty: the next pop puts the lost one back first, and so takes it again.
    assert queue.lpop(QUEUES, None, connection=redis) == (keys.rq_queue("high"), first.id)
    assert pending.claim(redis, "w9", first.id, STARTED_AT)
    queue.emptied()  # the worker had the claim's reply
    second = _job(redis, "high", "second")
    lranges = _lranges(redis)
    assert queue.lpop(QUEUES, None, connection=redis) == (keys.rq_queue("high"), second.id)
    assert _lranges(redis) == lranges  # no put-back looked at the list
    assert not queue.popped_empty  # until this job's claim, hand-back or drop


def test_no_pop_takes_a_job_once_workers_are_paused(redis: Redis) -> None:
    raised: list[BaseException] = []

    def wait_for_work() -> None:
        try:
            pending.pop(redis, "w1", QUEUES[-1:], 10)
        except WorkersPaused as exc:
            raised.append(exc)

    waiting = threading.Thread(target=wait_for_work)
    waiting.start()
    time.sleep(0.2)  # waiting on the empty queue when the pause begins
    redis.set(keys.RQ_SUSPENDED, 1)
    job = _job(redis, "low", "paused")
    waiting.join(10)
    # The wait took the job past the pause: the atomic step gave it back, first in its queue.
    assert len(raised) == 1
    assert redis.lrange(keys.rq_queue("low"), 0, -1) == [job.id.encode()]
    assert _popped(redis, "w1") == []
    with pytest.raises(WorkersPaused):
        pending.pop(redis, "w1", QUEUES, None)
    redis.delete(keys.RQ_SUSPENDED)
    assert pending.pop(redis, "w1", QUEUES, None) == (keys.rq_queue("low"), job.id)
