"""Providers inside the real `rq worker`: one embedder load per process; an LLM endpoint by config only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from redis import Redis
from werkzeug import Request, Response

from feynman_jobs import redisio
from feynman_jobs.providers.embedders import HashingProvider
from tests.chat_server import ANALYSIS_ZH, MEMORY_ZH, PROMPT_TOKENS, json_completion
from tests.support import Process, enqueue, http, sample, start_worker, wait_for

SECRET = "sk-never-in-a-log"


def _worker_pid(redis: Redis) -> int:
    [key] = redis.keys("rq:worker:*")
    return int(redisio.text(redis.hget(key, "pid")))


def test_the_embedder_is_loaded_once_per_worker_process(api: str, worker: Process, redis: Redis) -> None:
    jobs = []
    for n in range(6):
        documents = [{"id": f"d{n}", "text": f"第{n}份笔记：叶绿素吸收光能。Note {n} on chlorophyll."}]
        payload = {"namespace": "notes", "documents": documents}
        jobs.append(enqueue(api, {"type": "vectorize_documents", "payload": payload}))
    results = [wait_for(api, job["id"])["result"] for job in jobs]
    assert {result["embedder"] for result in results} == {HashingProvider().name}
    assert sum(result["chunks"] for result in results) == 6
    # Each job ran in its own forked work horse; only the worker parent ever loaded the embedder.
    loads = re.findall(r"embedder loaded name=(\S+) pid=(\d+)", worker.log())
    assert loads == [(HashingProvider().name, str(_worker_pid(redis)))]


@pytest.fixture
def llm_worker(redis_url: str, redis: Redis, tmp_path: Path, httpserver: HTTPServer) -> Iterator[Process]:
    """The Procfile's worker, configured for the local chat-completions server: nothing else differs."""
    env = {
        "FEYNMAN_LLM_BASE_URL": httpserver.url_for("/v1"),
        "FEYNMAN_LLM_MODEL": "test-model",
        "FEYNMAN_LLM_API_KEY": SECRET,
        "FEYNMAN_LOG_LEVEL": "DEBUG",
    }
    proc = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    yield proc
    proc.stop()
    assert SECRET not in proc.log()


def _model_answers(request: Request) -> Response:
    """Memory fields for a consolidation prompt, analysis fields otherwise."""
    system = json.loads(request.get_data())["messages"][0]["content"]
    answer = MEMORY_ZH if "durable memory" in system else ANALYSIS_ZH
    return Response(json.dumps(json_completion(answer)), content_type="application/json")


def _analysis_request(max_retries: int | None = None) -> dict[str, object]:
    conversation = sample("photosynthesis_zh")
    payload = {
        "session_id": "s-llm",
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
    }
    body: dict[str, object] = {"type": "analyze_conversation", "payload": payload}
    if max_retries is not None:
        body["max_retries"] = max_retries
    return body


def test_analysis_from_the_configured_endpoint(api: str, llm_worker: Process, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(_model_answers)
    done = wait_for(api, enqueue(api, _analysis_request())["id"])
    result = done["result"]
    assert {key: result[key] for key in ANALYSIS_ZH} == ANALYSIS_ZH
    assert result["coverage"] == pytest.approx(2 / 3, abs=1e-3)
    assert (result["model"], result["language"], result["session_id"]) == ("test-model", "zh", "s-llm")
    assert done["cost"]["calls"] == 1
    assert done["cost"]["tokens_in"] == PROMPT_TOKENS
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == f"Bearer {SECRET}"


def test_a_memory_from_the_endpoint_is_vectorized_and_found(
    api: str, llm_worker: Process, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(_model_answers)
    conversation = sample("photosynthesis_zh")
    payload = {
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
        "session_id": "s-9",
        "learner_id": "l-9",
    }
    job = enqueue(api, {"type": "consolidate_memory", "payload": payload})
    record = wait_for(api, job["id"])["result"]
    assert {key: record[key] for key in MEMORY_ZH} == MEMORY_ZH
    assert record["model"] == "test-model"
    wait_for(api, job["follow_up"][0])
    code, _, found = http(
        "GET", f"{api}/api/memories/search?" + urlencode({"q": "ATP具体是什么", "learner_id": "l-9"})
    )
    assert code == 200, found
    assert found["hits"][0]["doc_id"] == record["id"]
