"""Feynman-technique review: key ideas, coverage, gaps, unexplained jargon and follow-up questions."""

from __future__ import annotations

import re

import pytest

from feynman_jobs.text.analyze import analyze
from feynman_jobs.text.tokens import count_tokens
from tests.samples import CONVERSATIONS, GRADIENT_DESCENT_MIXED, PHOTOSYNTHESIS_ZH, TCP_CONGESTION_EN, TOPICS

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _strings(result: dict[str, object], field: str) -> list[str]:
    value = result[field]
    assert isinstance(value, list)
    assert all(isinstance(item, str) for item in value)
    return [str(item) for item in value]


def test_chinese_key_ideas_are_readable_words() -> None:
    result = analyze("光合作用", PHOTOSYNTHESIS_ZH)
    ideas = _strings(result, "key_ideas")
    assert ideas[0] == "光合作用"  # merged from 光合 + 合作 + 作用, and the topic
    assert {"叶绿体", "叶绿素", "光反应", "暗反应"} <= set(ideas)
    assert not {"合作", "绿体", "绿素", "反应"} & set(ideas)  # no arbitrary bigrams of longer words
    assert len(ideas) <= 8
    everything = "".join(m["content"] for m in PHOTOSYNTHESIS_ZH)
    assert all(idea in everything for idea in ideas)


def test_chinese_gap_and_unexplained_terms() -> None:
    result = analyze("光合作用", PHOTOSYNTHESIS_ZH)
    covered, gaps = _strings(result, "covered"), _strings(result, "gaps")
    # The tutor explained 暗反应 (the dark reactions); the learner only said "后面那个阶段".
    assert "暗反应" in gaps
    assert {"光合作用", "叶绿体", "光反应"} <= set(covered)
    assert not set(covered) & set(gaps)
    assert result["coverage"] == pytest.approx(len(covered) / len(_strings(result, "key_ideas")), abs=1e-3)
    unexplained = _strings(result, "unexplained_terms")
    assert "ATP" in unexplained
    assert "NADPH" in unexplained
    # "叶绿素是一种色素" and "光合作用就是…" are explanations.
    assert "叶绿素" not in unexplained
    assert "光合作用" not in unexplained


def test_chinese_follow_up_questions_are_chinese_and_use_the_terms() -> None:
    result = analyze("光合作用", PHOTOSYNTHESIS_ZH)
    questions = _strings(result, "follow_up_questions")
    assert 1 <= len(questions) <= 8
    assert all(q.endswith("？") and _CJK.search(q) for q in questions)
    assert any("「暗反应」" in q for q in questions)
    assert any("「ATP」" in q for q in questions)
    assert result["language"] == "zh"


def test_english_gap_unexplained_and_follow_ups() -> None:
    result = analyze("TCP congestion control", TCP_CONGESTION_EN)
    ideas, gaps = _strings(result, "key_ideas"), _strings(result, "gaps")
    assert {"congestion window", "congestion avoidance"} <= set(ideas)
    assert "congestion avoidance" in gaps  # only the tutor named it, twice
    assert "congestion window" in _strings(result, "covered")
    unexplained = _strings(result, "unexplained_terms")
    assert "RTT" in unexplained
    assert "TCP" not in unexplained  # part of the topic itself
    questions = _strings(result, "follow_up_questions")
    assert questions
    assert all(q.endswith("?") and not _CJK.search(q) for q in questions)
    assert any("congestion avoidance" in q for q in questions)
    assert "Can you explain RTT in your own words?" in questions
    assert result["language"] == "en"


def test_mixed_conversation_gets_chinese_follow_ups() -> None:
    result = analyze("梯度下降 gradient descent", GRADIENT_DESCENT_MIXED)
    assert result["language"] == "mixed"
    ideas = _strings(result, "key_ideas")
    assert "gradient descent" in ideas
    assert "saddle point" in _strings(result, "gaps")
    # The topic is named in both languages; the learner saying "gradient descent" covers both names.
    assert "梯度下降" not in _strings(result, "gaps")
    assert "mini-batch" in _strings(result, "unexplained_terms")  # "mini-batch 我不太确定"
    questions = _strings(result, "follow_up_questions")
    assert questions
    assert all(_CJK.search(q) for q in questions)
    assert any("saddle point" in q for q in questions)


def test_explained_term_is_not_flagged() -> None:
    conversation = [
        {"role": "assistant", "content": "What is an RTT, and why does TCP care about it?"},
        {
            "role": "user",
            "content": "RTT means round-trip time: how long a packet takes to get there and back.",
        },
        {"role": "assistant", "content": "And what does the sender do with the RTT?"},
        {
            "role": "user",
            "content": "It sets the retransmission timeout from the RTT. I'm not sure how exactly.",
        },
    ]
    result = analyze("round-trip time", conversation)
    assert "RTT" not in _strings(result, "unexplained_terms")


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_shape_and_token_counts(name: str) -> None:
    result = analyze(TOPICS[name], CONVERSATIONS[name], max_items=4)
    assert set(result) == {
        "key_ideas",
        "covered",
        "unexplained_terms",
        "gaps",
        "follow_up_questions",
        "coverage",
        "language",
        "tokens_in",
        "tokens_out",
    }
    ideas = _strings(result, "key_ideas")
    assert len(ideas) <= 4
    assert len(_strings(result, "follow_up_questions")) <= 4
    assert sorted(_strings(result, "covered") + _strings(result, "gaps")) == sorted(ideas)
    coverage = result["coverage"]
    assert isinstance(coverage, float)
    assert 0.0 <= coverage <= 1.0
    everything = "\n".join([TOPICS[name], *(m["content"] for m in CONVERSATIONS[name])])
    assert result["tokens_in"] == count_tokens(everything)
    assert isinstance(result["tokens_out"], int)
    assert result["tokens_out"] > 0


def test_no_learner_text_raises() -> None:
    with pytest.raises(ValueError, match="learner"):
        analyze(
            "光合作用",
            [{"role": "assistant", "content": "请讲讲光合作用。"}, {"role": "user", "content": " "}],
        )
    with pytest.raises(ValueError, match="learner"):
        analyze("光合作用", [])


def test_learner_only_conversation_works() -> None:
    result = analyze("光合作用", [{"role": "user", "content": "光合作用把光能变成化学能，发生在叶绿体里。"}])
    assert "光合作用" in _strings(result, "covered")
    assert result["coverage"] == 1.0
    assert _strings(result, "gaps") == []


HASH_TABLES = [
    {
        "role": "user",
        "content": "A hash table stores key-value pairs. It uses a hash function to map each key to a bucket "
        "index, so lookups are O(1) on average.",
    },
    {"role": "assistant", "content": "What happens when two keys hash to the same bucket?"},
    {"role": "user", "content": "That's a collision. You can handle collisions with chaining."},
    {"role": "assistant", "content": "Good. What about open addressing, and what is the load factor?"},
    {
        "role": "user",
        "content": "I think open addressing probes other slots. I'm not sure about the load factor.",
    },
]


def test_topic_phrase_is_preferred_to_its_words() -> None:
    result = analyze("hash tables", HASH_TABLES)
    ideas = _strings(result, "key_ideas")
    assert "hash table" in ideas  # not the fragments "hash" and "table"
    assert "hash" not in ideas
    assert "table" not in ideas
    assert "load factor" in _strings(result, "unexplained_terms")  # "I'm not sure about the load factor."
