"""The LLM client against a real local HTTP server speaking chat completions (pytest-httpserver)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feynman_jobs.errors import (
    HoldJob,
    ModelOutputError,
    PermanentJobError,
    ProviderError,
    ProviderRateLimited,
    RetryableJobError,
)
from feynman_jobs.providers.chat import ChatClient
from feynman_jobs.providers.http import DEFAULT_429_WAIT_S, MAX_RETRY_AFTER_S
from feynman_jobs.providers.llm import AnalysisDraft, EndpointLLM, MemoryDraft
from tests.chat_server import (
    ANALYSIS_ZH,
    COMPLETION_TOKENS,
    MEMORY_ZH,
    PROMPT_TOKENS,
    completion,
    json_completion,
)
from tests.samples import CONVERSATIONS, TOPICS
from tests.support import wait_until

PATH = "/v1/chat/completions"
Usage = list[tuple[str, int, int]]


@pytest.fixture
def usage() -> Usage:
    return []


def _client(httpserver: HTTPServer, usage: Usage, timeout_s: float = 5) -> ChatClient:
    return ChatClient(
        httpserver.url_for("/v1"),
        model="test-model",
        api_key=SecretStr("sk-test-secret"),
        timeout_s=timeout_s,
        record=lambda model, tokens_in, tokens_out: usage.append((model, tokens_in, tokens_out)),
    )


def _photosynthesis() -> tuple[str, list[dict[str, str]]]:
    return TOPICS["photosynthesis_zh"], CONVERSATIONS["photosynthesis_zh"]


def test_analysis_is_asked_as_json_validated_and_its_usage_recorded(
    httpserver: HTTPServer, usage: Usage
) -> None:
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_json(json_completion(ANALYSIS_ZH))
    analysis = EndpointLLM(_client(httpserver, usage)).analyze(*_photosynthesis())
    assert analysis == AnalysisDraft.model_validate(ANALYSIS_ZH)
    assert usage == [("test-model", PROMPT_TOKENS, COMPLETION_TOKENS)]
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == "Bearer sk-test-secret"
    body = json.loads(request.get_data())
    assert body["model"] == "test-model"
    assert body["response_format"] == {"type": "json_object"}
    assert "follow_up_questions" in body["messages"][0]["content"]
    assert "叶绿素" in body["messages"][1]["content"]  # the transcript is sent


def test_a_429_with_a_short_retry_after_is_waited_out_then_succeeds(
    httpserver: HTTPServer, usage: Usage
) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_data(
        "rate limited", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(json_completion(MEMORY_ZH))
    memory = EndpointLLM(_client(httpserver, usage)).summarize(*_photosynthesis())
    assert memory == MemoryDraft.model_validate(MEMORY_ZH)
    assert len(httpserver.log) == 2
    assert usage == [("test-model", PROMPT_TOKENS, COMPLETION_TOKENS)]  # the 429 cost nothing


@pytest.mark.parametrize(
    ("headers", "held_s"),
    [
        ({}, DEFAULT_429_WAIT_S),
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": "86400"}, MAX_RETRY_AFTER_S),
    ],
)
def test_a_rate_limit_holds_the_job_for_the_retry_after(
    httpserver: HTTPServer, usage: Usage, headers: dict[str, str], held_s: float
) -> None:
    httpserver.expect_request(PATH).respond_with_data("slow down", status=429, headers=headers)
    with pytest.raises(ProviderRateLimited, match="HTTP 429") as caught:
        _client(httpserver, usage).complete([{"role": "user", "content": "hi"}])
    assert isinstance(caught.value, HoldJob)  # held and rescheduled, never a failure
    assert caught.value.retry_after_s == held_s
    assert len(httpserver.log) == 1
    assert usage == []


def test_a_retry_after_date_is_honoured(httpserver: HTTPServer, usage: Usage) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    httpserver.expect_request(PATH).respond_with_data("slow down", status=429, headers={"Retry-After": later})
    with pytest.raises(ProviderRateLimited) as caught:
        _client(httpserver, usage).complete([{"role": "user", "content": "hi"}])
    assert 85 <= caught.value.retry_after_s <= 90


@pytest.mark.parametrize("status", [408, 409, 500, 503])
def test_server_errors_timeouts_and_conflicts_are_retryable_by_rq(
    httpserver: HTTPServer, usage: Usage, status: int
) -> None:
    httpserver.expect_request(PATH).respond_with_data("busy", status=status)
    with pytest.raises(RetryableJobError, match=f"HTTP {status}"):
        _client(httpserver, usage).complete([{"role": "user", "content": "hi"}])
    assert len(httpserver.log) == 1
    assert usage == []


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_other_client_errors_are_permanent(httpserver: HTTPServer, usage: Usage, status: int) -> None:
    httpserver.expect_request(PATH).respond_with_json({"error": {"message": "no"}}, status=status)
    with pytest.raises(ProviderError, match=f"HTTP {status}") as caught:
        _client(httpserver, usage).complete([{"role": "user", "content": "hi"}])
    assert isinstance(caught.value, PermanentJobError)
    assert len(httpserver.log) == 1


def test_the_inline_retry_passes_the_guard_again(httpserver: HTTPServer, usage: Usage) -> None:
    guarded: list[str] = []

    @contextmanager
    def guard(
        model: str, tokens_in: int, tokens_out: int, *, remote: bool, kind: str = "chat"
    ) -> Iterator[None]:
        guarded.append(model)
        yield

    httpserver.expect_ordered_request(PATH).respond_with_data(
        "busy", status=503, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request(PATH).respond_with_json(completion("好的"))
    client = _client(httpserver, usage)
    client._guard = guard
    assert client.complete([{"role": "user", "content": "hi"}]) == "好的"
    assert guarded == ["test-model", "test-model"]  # budgets and rate limits checked before each try
    assert len(httpserver.log) == 2


def test_a_timeout_is_retryable_by_rq(httpserver: HTTPServer, usage: Usage) -> None:
    release, answered = threading.Event(), threading.Event()

    def slow(_request: Request) -> Response:
        release.wait(10)  # answer only after the client has given up
        answered.set()
        return Response(json.dumps(completion("late")), content_type="application/json")

    httpserver.expect_request(PATH).respond_with_handler(slow)
    with pytest.raises(RetryableJobError, match=r"no answer within 0\.2s"):
        _client(httpserver, usage, timeout_s=0.2).complete([{"role": "user", "content": "hi"}])
    assert usage == []
    release.set()
    # Let the late answer land in this test's server log, not the next test's.
    wait_until(lambda: answered.is_set() and len(httpserver.log) == 1, 10, "the late answer to be logged")


def test_invalid_json_is_asked_again_once_and_both_calls_are_recorded(
    httpserver: HTTPServer, usage: Usage
) -> None:
    httpserver.expect_ordered_request(PATH).respond_with_json(completion("当然！光合作用的关键点是……"))
    httpserver.expect_ordered_request(PATH).respond_with_json(json_completion(ANALYSIS_ZH))
    analysis = EndpointLLM(_client(httpserver, usage)).analyze(*_photosynthesis())
    assert analysis.unexplained_terms == ["ATP", "NADPH", "类囊体"]
    assert len(usage) == 2
    retry = json.loads(httpserver.log[1][0].get_data())["messages"]
    assert retry[-2] == {"role": "assistant", "content": "当然！光合作用的关键点是……"}
    assert "not valid" in retry[-1]["content"]


def test_invalid_json_twice_fails_clearly(httpserver: HTTPServer, usage: Usage) -> None:
    missing_key = {key: value for key, value in ANALYSIS_ZH.items() if key != "gaps"}
    httpserver.expect_ordered_request(PATH).respond_with_json(completion("not json at all"))
    httpserver.expect_ordered_request(PATH).respond_with_json(json_completion(missing_key))
    with pytest.raises(ModelOutputError, match=r"invalid JSON twice.*gaps: Field required"):
        EndpointLLM(_client(httpserver, usage)).analyze(*_photosynthesis())
    assert len(usage) == 2


def test_json_in_a_code_fence_is_accepted(httpserver: HTTPServer, usage: Usage) -> None:
    fenced = "```json\n" + json.dumps(MEMORY_ZH, ensure_ascii=False) + "\n```"
    httpserver.expect_request(PATH).respond_with_json(completion(fenced))
    assert EndpointLLM(_client(httpserver, usage)).summarize(*_photosynthesis()).open_questions == [
        "ATP具体是什么？"
    ]


def test_an_invalid_answer_is_not_sent_back_when_the_job_already_did(
    httpserver: HTTPServer, usage: Usage
) -> None:
    httpserver.expect_request(PATH).respond_with_json(completion("not json at all"))
    client = _client(httpserver, usage)
    client._may_reask = lambda: False
    with pytest.raises(ModelOutputError, match="already asked again once"):
        EndpointLLM(client).analyze(*_photosynthesis())
    assert len(httpserver.log) == 1


def test_an_endpoint_without_usage_is_recorded_by_estimate(httpserver: HTTPServer, usage: Usage) -> None:
    httpserver.expect_request(PATH).respond_with_json(completion("光合作用需要光。", usage=False))
    assert _client(httpserver, usage).complete([{"role": "user", "content": "什么是光合作用？"}]) == (
        "光合作用需要光。"
    )
    [(model, tokens_in, tokens_out)] = usage
    assert model == "test-model"
    assert tokens_in > 0
    assert tokens_out > 0
