"""An OpenAI-compatible chat-completions client: the one place an HTTP call to the LLM is made."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Literal, Protocol, TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from feynman_jobs.errors import ModelOutputError
from feynman_jobs.providers.http import client, post_json, with_inline_retry
from feynman_jobs.providers.prompts import output_tokens
from feynman_jobs.text.tokens import count_tokens

logger = logging.getLogger(__name__)

#: Records one model call: (model, tokens in, tokens out). Jobs pass context.record_usage.
UsageRecorder = Callable[[str, int, int], None]


#: The two kinds of model call, each with its own rate limits: chat completions and embeddings.
CallKind = Literal["chat", "embeddings"]


class CallGuard(Protocol):
    """Wraps one model call (model, estimated tokens in and out); may raise HoldJob before it."""

    def __call__(
        self, model: str, tokens_in: int, tokens_out: int, *, remote: bool, kind: CallKind = "chat"
    ) -> AbstractContextManager[None]: ...


def no_guard(
    model: str, tokens_in: int, tokens_out: int, *, remote: bool, kind: CallKind = "chat"
) -> AbstractContextManager[None]:
    """No budget or rate limit (outside a job)."""
    return nullcontext()


#: Asked before an invalid answer is sent back to the model: True if this may happen now. Jobs pass
#: context.take_reask, which says yes once per job (not once per attempt).
ReaskPolicy = Callable[[], bool]


def always_reask() -> bool:
    """Outside a job: every call may send one invalid answer back."""
    return True


#: Tokens of chat framing around the messages' text.
PROMPT_FRAMING_TOKENS = 20
Model = TypeVar("Model", bound=BaseModel)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class ChatClient:
    """Chat completions against one endpoint and model; every call's usage is recorded."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: SecretStr | None,
        timeout_s: float,
        record: UsageRecorder,
        guard: CallGuard = no_guard,
        may_reask: ReaskPolicy = always_reask,
    ) -> None:
        self.model = model
        self._record = record
        self._guard = guard
        self._may_reask = may_reask
        self._http: httpx.Client = client(base_url, api_key, timeout_s)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def complete(self, messages: list[dict[str, str]], *, json_object: bool = False) -> str:
        """One chat completion: THE choke point for every LLM HTTP call (budgets and rate limits go here).

        Records the endpoint's `usage` (estimated with count_tokens only if it reports none).
        """
        estimate_in = count_tokens("\n".join(m["content"] for m in messages)) + PROMPT_FRAMING_TOKENS
        max_out = output_tokens(estimate_in)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": 0.2,
            "max_tokens": max_out,
        }
        if json_object:
            body["response_format"] = {"type": "json_object"}
        what = f"LLM {self.model}"

        def once() -> object:
            # The guard reserves the estimate (budgets) and takes it from the rate-limit windows first;
            # the actual usage is recorded inside it, so spend counts before the reservation goes back.
            with self._guard(self.model, estimate_in, max_out, remote=True):
                data = post_json(self._http, "chat/completions", body, what=what)
                content, tokens_in, tokens_out = self._read(data, messages)
                self._record(self.model, tokens_in, tokens_out)
            return content

        # A short Retry-After is waited out once; the second try passes the guard again.
        content = with_inline_retry(once, what=what)
        if not isinstance(content, str):
            raise ModelOutputError(f"LLM {self.model}: the answer has no choices[0].message.content")
        return content

    def _read(self, data: dict[str, Any], messages: list[dict[str, str]]) -> tuple[object, int, int]:
        """The answer's content and its usage (estimated with count_tokens only if it reports none)."""
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
        if usage is not None:
            tokens_in, tokens_out = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        else:
            logger.warning("LLM %s reported no usage; recording an estimate", self.model)
            tokens_in = count_tokens("\n".join(m["content"] for m in messages))
            tokens_out = count_tokens(content if isinstance(content, str) else "")
        return content, tokens_in, tokens_out

    def ask_json(self, messages: list[dict[str, str]], schema: type[Model]) -> Model:
        """Ask for a JSON object and validate it. An invalid answer is sent back once, if the policy
        allows (once per job inside a job); otherwise, or if the second answer is invalid too,
        ModelOutputError — which fails the job at once: asking yet again costs money and rarely helps."""
        content = self.complete(messages, json_object=True)
        try:
            return schema.model_validate_json(_unfenced(content))
        except ValidationError as exc:
            problems = _describe(exc)
        logger.warning("LLM %s: invalid JSON answer: %s", self.model, problems)
        if not self._may_reask():
            raise ModelOutputError(
                f"LLM {self.model} answered with invalid JSON and this job has already asked again once; "
                f"problems: {problems}"
            )
        conversation = [
            *messages,
            {"role": "assistant", "content": content},
            {
                "role": "user",
                "content": f"That answer was not valid: {problems}. "
                "Reply again with only the JSON object, with every key asked for.",
            },
        ]
        content = self.complete(conversation, json_object=True)
        try:
            return schema.model_validate_json(_unfenced(content))
        except ValidationError as exc:
            problems = _describe(exc)
        logger.warning("LLM %s: invalid JSON answer again: %s", self.model, problems)
        raise ModelOutputError(
            f"LLM {self.model} answered with invalid JSON twice; last problems: {problems}"
        )


def _unfenced(content: str) -> str:
    """The answer without a Markdown code fence some models wrap JSON in."""
    match = _FENCE.match(content)
    return match.group(1) if match else content


def _describe(error: ValidationError) -> str:
    """Short, prompt-safe description of what was wrong (no input values)."""
    parts = []
    for item in error.errors(include_input=False)[:5]:
        where = ".".join(str(part) for part in item["loc"]) or "the answer"
        parts.append(f"{where}: {item['msg']}")
    return json.dumps(parts, ensure_ascii=False)
