"""Popped-but-not-started jobs, on a real Redis (the moves are Lua and BLMOVE): every pop is recorded,
a start is a claim, and a lost worker's pops go back to the front of their queues."""

from __future__ import annotations

import threading
import time

from redis import Redis
from rq.job import Job

from feynman_jobs import keys
from feynman_jobs.lifecycle import cancellation
from feynman_jobs.queueing import pending
from feynman_jobs.queueing.wiring import QUEUE_NAMES, get_queue

QUEUES = [keys.rq_queue(name) for name in QUEUE_NAMES]


def _job(redis: Redis, queue: str, tag: str) -> Job:
    return get_queue(queue, redis).enqueue("tests.jobs.record_start", tag)


def _started(tag: str, keep: int = 3) -> pending.TimelineEntry:
    return pending.TimelineEntry(f'{{"event": "started", "tag": "{tag}"}}', 60, keep)


def _popped(redis: Redis, worker: str) -> list[str]:
    return [raw.decode() for raw in redis.lrange(keys.worker_popped(worker), 0, -1)]  # type: ignore[union-attr]


def test_a_pop_takes_the_first_queue_first_and_records_who_took_it(redis: Redis) -> None:
    low, high = _job(redis, "low", "l"), _job(redis, "high", "h")
    assert pending.pop(redis, "w1", QUEUES, None) == (keys.rq_queue("high"), high.id)
    assert _popped(redis, "w1") == [high.id]
    assert redis.llen(keys.rq_queue("high")) == 0
    assert pending.claim(redis, "w1", high.id, _started("h"))
    assert (redis.hget(high.key, "status"), redis.hget(high.key, "worker_name")) == (b"started", b"w1")
    # The timeline's `started` entry is written by the claim itself, with the list's TTL.
    assert redis.lrange(keys.job_events(high.id), 0, -1) == [b'{"event": "started", "tag": "h"}']
    assert 0 < redis.ttl(keys.job_events(high.id)) <= 60
    assert _popped(redis, "w1") == []
    assert not pending.claim(redis, "w1", high.id, _started("again"))  # claimed once only
    assert redis.llen(keys.job_events(high.id)) == 1  # and a refused claim writes nothing
    assert pending.pop(redis, "w1", QUEUES, None) == (keys.rq_queue("low"), low.id)
    redis.rpush(keys.job_events(low.id), "1", "2", "3")
    assert pending.claim(redis, "w1", low.id, _started("l", keep=3))
    # Past its bound the list keeps the newest entries.
    assert redis.lrange(keys.job_events(low.id), 0, -1) == [b"2", b"3", b'{"event": "started", "tag": "l"}']
    assert pending.pop(redis, "w1", QUEUES, None) is None


def test_a_job_canceled_after_its_pop_is_never_claimed(redis: Redis) -> None:
    job = _job(redis, "default", "c")
    pending.pop(redis, "w1", QUEUES, None)
    assert cancellation.cancel(redis, job.id).action == "canceled"
    assert not pending.claim(redis, "w1", job.id, _started("c"))
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


def test_a_blocking_pop_takes_a_job_that_arrives_while_it_waits(redis: Redis) -> None:
    found: list[tuple[str, str] | None] = []
    waiting = threading.Thread(target=lambda: found.append(pending.pop(redis, "w1", QUEUES, 10)))
    waiting.start()
    time.sleep(0.3)
    job = _job(redis, "low", "arrives")  # a lower queue: looked at between waits on the first one
    waiting.join(10)
    assert found == [(keys.rq_queue("low"), job.id)]
    assert pending.claim(redis, "w1", job.id, _started("arrives"))
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
