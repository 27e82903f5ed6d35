"""Each job type over real HTTP, run by a real `rq worker`, in Chinese, English and mixed text."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from redis import Redis

from feynman_jobs.memory.records import load_memory
from feynman_jobs.memory.vectors import RedisVectorStore
from tests.samples import CONVERSATIONS
from tests.support import Process, enqueue, http, sample, wait_for

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.mark.parametrize("name", ["photosynthesis_zh", "tcp_congestion_en", "gradient_descent_mixed"])
def test_analysis_returns_every_structured_field(api: str, worker: Process, name: str) -> None:
    conversation = sample(name)
    payload = {
        "session_id": f"s-{name}",
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
    }
    job = enqueue(api, {"type": "analyze_conversation", "payload": payload})
    assert job["queue"] == "high"
    done = wait_for(api, job["id"])
    result = done["result"]
    for field in ("key_ideas", "covered", "unexplained_terms", "gaps", "follow_up_questions"):
        assert isinstance(result[field], list), field
    assert result["key_ideas"]
    assert result["follow_up_questions"]
    assert 0.0 <= result["coverage"] <= 1.0
    assert result["session_id"] == f"s-{name}"
    all_text = " ".join(m["content"] for m in conversation["messages"]) + conversation["topic"]
    for idea in result["key_ideas"]:
        assert idea.lower() in all_text.lower(), idea
    if name.endswith("zh"):
        assert all(CJK.search(question) for question in result["follow_up_questions"])
    assert done["progress"]["fraction"] == 1.0
    assert done["attempts"] == 1
    assert done["cost"]["calls"] == 1
    assert done["cost"]["tokens_in"] > 0
    assert done["worker_name"]
    assert done["started_at"] <= done["ended_at"]


@pytest.mark.parametrize("name", ["photosynthesis_zh", "gradient_descent_mixed"])
def test_consolidation_writes_a_memory_that_vectorization_makes_findable(
    api: str, worker: Process, redis: Redis, name: str
) -> None:
    conversation = sample(name)
    payload = {"topic": conversation["topic"], "conversation": conversation["messages"], "learner_id": "l-7"}
    job = enqueue(api, {"type": "consolidate_memory", "payload": payload})
    [follow_up] = job["follow_up"]
    record = wait_for(api, job["id"])["result"]
    vectorized = wait_for(api, follow_up)
    assert vectorized["depends_on"] == [job["id"]]
    assert vectorized["started_at"] >= record["created_at"]

    stored = load_memory(redis, "l-7", record["id"])
    assert stored == record
    source = " ".join(m["content"] for m in conversation["messages"])
    assert record["summary"]
    assert all(point[:6] in source for point in record["key_points"])
    assert vectorized["result"]["chunks"] >= 1

    # A phrase the learner said finds the memory it came from, through the API.
    phrase = next(m["content"] for m in conversation["messages"] if m["role"] == "user")[:12]
    query = {"q": phrase, "k": 3, "learner_id": "l-7"}
    code, _, found = http("GET", f"{api}/api/memories/search?" + urlencode(query))
    assert code == 200, found
    assert (found["learner_id"], found["namespaces"]) == ("l-7", [])
    assert found["hits"][0]["namespace"] == "memories"
    assert found["hits"][0]["doc_id"] == record["id"]
    assert found["hits"][0]["metadata"]["learner_id"] == "l-7"


def test_search_tells_chinese_memories_apart(api: str, worker: Process) -> None:
    memories = {}
    for name in ("photosynthesis_zh", "gradient_descent_mixed"):
        conversation = sample(name)
        payload = {
            "topic": conversation["topic"],
            "conversation": conversation["messages"],
            "learner_id": "l-1",
        }
        job = enqueue(api, {"type": "consolidate_memory", "payload": payload})
        memories[name] = wait_for(api, job["id"])["result"]["id"]
        wait_for(api, job["follow_up"][0])
    for name, phrase in (
        ("photosynthesis_zh", "主要吸收红光和蓝光"),
        ("gradient_descent_mixed", "learning rate 太大"),
    ):
        assert phrase in " ".join(m["content"] for m in CONVERSATIONS[name])
        query = {"q": phrase, "k": 2, "learner_id": "l-1"}
        code, _, found = http("GET", f"{api}/api/memories/search?" + urlencode(query))
        assert code == 200, found
        assert found["hits"][0]["doc_id"] == memories[name], (phrase, found["hits"])


def test_the_same_session_consolidated_twice_keeps_one_memory(
    api: str, worker: Process, redis: Redis
) -> None:
    conversation = sample("photosynthesis_zh")
    payload = {
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
        "session_id": "same",
        "learner_id": "l-2",
    }
    first = wait_for(api, enqueue(api, {"type": "consolidate_memory", "payload": payload})["id"])
    second = wait_for(api, enqueue(api, {"type": "consolidate_memory", "payload": payload})["id"])
    assert first["result"]["id"] == second["result"]["id"]
    assert len(redis.keys("feynman:learner:*:memory:*")) == 1


def test_submitted_documents_are_chunked_embedded_and_replaced(
    api: str, worker: Process, redis: Redis
) -> None:
    long_text = "。".join(CONVERSATIONS["photosynthesis_zh"][i]["content"] for i in range(4)) * 3
    documents = [
        {"id": "doc-zh", "text": long_text, "metadata": {"lang": "zh"}},
        {"id": "doc-en", "text": " ".join(m["content"] for m in CONVERSATIONS["tcp_congestion_en"])},
    ]
    job = enqueue(
        api, {"type": "vectorize_documents", "payload": {"namespace": "course-1", "documents": documents}}
    )
    result = wait_for(api, job["id"])["result"]
    assert result["namespace"] == "course-1"
    assert [doc["id"] for doc in result["documents"]] == ["doc-zh", "doc-en"]
    zh_chunks = result["documents"][0]["chunks"]
    assert zh_chunks >= 2
    store = RedisVectorStore(redis)
    assert store.chunk_count("course-1", "doc-zh") == zh_chunks

    # Re-vectorizing a document replaces its chunks instead of adding to them.
    again = {"namespace": "course-1", "documents": [{"id": "doc-zh", "text": "叶绿素吸收光能。"}]}
    wait_for(api, enqueue(api, {"type": "vectorize_documents", "payload": again})["id"])
    assert store.chunk_count("course-1", "doc-zh") == 1
    assert store.chunk_count("course-1") == 1 + result["documents"][1]["chunks"]


def test_rollup_folds_the_ledger_written_by_other_jobs(api: str, worker: Process) -> None:
    conversation = sample("tcp_congestion_en")
    payload = {"session_id": "s-r", "topic": conversation["topic"], "conversation": conversation["messages"]}
    analyzed = [
        wait_for(api, enqueue(api, {"type": "analyze_conversation", "payload": payload})["id"]) for _ in "ab"
    ]
    rollup = enqueue(api, {"type": "rollup_costs", "payload": {"granularity": "hour"}})
    assert rollup["queue"] == "low"
    windows = wait_for(api, rollup["id"])["result"]["windows"]
    current = windows[-1]
    assert current["calls"] == 2
    assert current["tokens_in"] == sum(job["cost"]["tokens_in"] for job in analyzed)
    [row] = current["by_model_and_type"]
    assert row["job_type"] == "analyze_conversation"
    # Running the same window again gives the same figures.
    again = enqueue(
        api,
        {"type": "rollup_costs", "payload": {"granularity": "hour", "window_start": current["window_start"]}},
    )
    assert wait_for(api, again["id"])["result"]["windows"] == [current]
