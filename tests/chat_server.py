"""Answers of an OpenAI-compatible chat-completions endpoint, and a counting fake provider to serve them
(chat completions and embeddings)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feynman_jobs.text.embed import HashingEmbedder

#: What the test endpoint reports as usage for every successful call.
PROMPT_TOKENS = 321
COMPLETION_TOKENS = 123
#: What the test endpoint bills for each text of an embeddings request.
EMBEDDING_TOKENS_PER_INPUT = 50

ANALYSIS_ZH: dict[str, Any] = {
    "key_ideas": ["光能转化为化学能", "光反应产生ATP和NADPH", "暗反应（卡尔文循环）固定二氧化碳"],
    "covered": ["光能转化为化学能", "光反应产生ATP和NADPH"],
    "unexplained_terms": ["ATP", "NADPH", "类囊体"],
    "gaps": ["没有讲到暗反应如何利用ATP和NADPH把二氧化碳合成葡萄糖"],
    "follow_up_questions": ["ATP在细胞里起什么作用？", "暗反应发生在叶绿体的哪个部位？"],
}

MEMORY_ZH: dict[str, Any] = {
    "summary": "学习者理解了光合作用是植物利用叶绿素吸收光能、把二氧化碳和水合成葡萄糖并放出氧气的过程。",
    "key_points": ["叶绿素主要吸收红光和蓝光，反射绿光", "光反应在类囊体膜上进行，产生ATP和NADPH"],
    "open_questions": ["ATP具体是什么？"],
}


def completion(content: str, *, usage: bool = True) -> dict[str, Any]:
    """A chat.completion object whose one choice says `content`."""
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": "test-model-2026",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
    if usage:
        body["usage"] = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        }
    return body


def json_completion(answer: dict[str, Any]) -> dict[str, Any]:
    """A completion whose content is `answer` as JSON, the way a model in JSON mode answers."""
    return completion(json.dumps(answer, ensure_ascii=False))


Step = Callable[[dict[str, Any]], Response]


def model_answer(body: dict[str, Any]) -> Response:
    """A valid answer to what was asked: memory fields for a consolidation prompt, analysis otherwise."""
    answer = MEMORY_ZH if "durable memory" in body["messages"][0]["content"] else ANALYSIS_ZH
    return Response(json.dumps(json_completion(answer)), content_type="application/json")


def invalid_answer(_body: dict[str, Any]) -> Response:
    """An answer that is not the JSON object asked for."""
    return Response(json.dumps(completion("我觉得这是关于植物的。")), content_type="application/json")


def refuse(status: int, headers: dict[str, str] | None = None) -> Step:
    """Answer with an HTTP error (a body like OpenAI's)."""
    error = json.dumps({"error": {"message": f"refused with {status}", "type": "test"}})

    def step(_body: dict[str, Any]) -> Response:
        return Response(error, status=status, headers=headers, content_type="application/json")

    return step


class FakeProvider:
    """A chat-completions endpoint on a real local HTTP server that counts, per marker found in the
    prompt, the requests it receives and the answers (HTTP 200) it delivers, and the most requests it
    ever had in progress at once. Each marker follows a script of steps; its last step repeats."""

    PATH = "/v1/chat/completions"
    EMBEDDINGS_PATH = "/v1/embeddings"

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.received: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.max_in_flight = 0
        self.release = threading.Event()
        self._in_flight = 0
        self._scripts: dict[str, list[Step]] = {}
        self._lock = threading.Lock()
        #: The number of texts of each embeddings request, in order.
        self.embedding_inputs: list[int] = []
        self._embedder = HashingEmbedder()
        server.expect_request(self.PATH, method="POST").respond_with_handler(self._handle)
        server.expect_request(self.EMBEDDINGS_PATH, method="POST").respond_with_handler(self._embed)

    @property
    def url(self) -> str:
        """The base URL to give the workers (FEYNMAN_LLM_BASE_URL)."""
        return self.server.url_for("/v1")

    def script(self, marker: str, *steps: Step) -> None:
        """How requests whose prompt contains `marker` are answered, in order."""
        self._scripts[marker] = list(steps)

    def held(self, then: Step) -> Step:
        """Keep the request open until the test sets `release` (at most 5 minutes), then answer."""

        def step(body: dict[str, Any]) -> Response:
            self.release.wait(300)
            return then(body)

        return step

    def _embed(self, request: Request) -> Response:
        """Real vectors (the offline hashing embedder's), so a search finds what was indexed."""
        body = json.loads(request.get_data())
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        with self._lock:
            self.embedding_inputs.append(len(texts))
        vectors = self._embedder.embed(texts)
        tokens = EMBEDDING_TOKENS_PER_INPUT * len(texts)
        answer = {
            "object": "list",
            "model": body["model"],
            "data": [
                {"object": "embedding", "index": i, "embedding": row.tolist()}
                for i, row in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return Response(json.dumps(answer), content_type="application/json")

    def _handle(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        prompt = "\n".join(message["content"] for message in body["messages"])
        marker = next((m for m in self._scripts if m in prompt), "")
        steps = self._scripts.get(marker, [model_answer])
        with self._lock:
            step = steps[min(self.received[marker], len(steps) - 1)]
            self.received[marker] += 1
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            response: Response = step(body)
        finally:
            with self._lock:
                self._in_flight -= 1
        if response.status_code == 200:
            with self._lock:
                self.answered[marker] += 1
        return response
