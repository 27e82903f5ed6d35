"""Answers of an OpenAI-compatible chat-completions endpoint, for the local test server."""

from __future__ import annotations

import json
from typing import Any

#: What the test endpoint reports as usage for every successful call.
PROMPT_TOKENS = 321
COMPLETION_TOKENS = 123

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
