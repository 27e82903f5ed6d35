"""Extractive summaries of tutoring sessions in Chinese, English and mixed text."""

from __future__ import annotations

import pytest

from feynman_jobs.text.summarize import shorten, summarize
from feynman_jobs.text.tokens import count_tokens, split_sentences
from tests.samples import (
    CONVERSATIONS,
    GRADIENT_DESCENT_MIXED,
    PHOTOSYNTHESIS_ZH,
    TCP_CONGESTION_EN,
    TOPICS,
    Conversation,
)


def _sentences(conversation: Conversation) -> set[str]:
    return {s for m in conversation for s in split_sentences(m["content"])}


def _summary_sentences(summary: str) -> list[str]:
    return split_sentences(summary)


def test_chinese_summary_is_made_of_conversation_sentences() -> None:
    result = summarize("光合作用", PHOTOSYNTHESIS_ZH)
    summary = result["summary"]
    assert isinstance(summary, str)
    parts = _summary_sentences(summary)
    assert 1 <= len(parts) <= 3
    assert set(parts) <= _sentences(PHOTOSYNTHESIS_ZH)
    assert "光合作用" in summary or "叶绿素" in summary
    assert " " not in summary  # CJK sentences are joined without spaces
    assert result["language"] == "zh"


def test_chinese_summary_keeps_conversation_order() -> None:
    summary = summarize("光合作用", PHOTOSYNTHESIS_ZH)["summary"]
    assert isinstance(summary, str)
    everything = "".join(m["content"] for m in PHOTOSYNTHESIS_ZH)
    positions = [everything.index(s) for s in _summary_sentences(summary)]
    assert positions == sorted(positions)


def test_chinese_key_points_and_open_question() -> None:
    result = summarize("光合作用", PHOTOSYNTHESIS_ZH)
    key_points = result["key_points"]
    assert isinstance(key_points, list)
    assert 1 <= len(key_points) <= 5
    assert len(set(key_points)) == len(key_points)
    summary = result["summary"]
    assert isinstance(summary, str)
    for point in key_points:
        assert point not in summary
        assert point.rstrip("…") in "".join(m["content"] for m in PHOTOSYNTHESIS_ZH)
    # The learner dodged "what is ATP"; every other question got an answer that takes it up.
    assert result["open_questions"] == ["你说光能被储存在ATP里，那ATP具体是什么？"]


def test_english_summary_about_congestion_control() -> None:
    result = summarize("TCP congestion control", TCP_CONGESTION_EN)
    summary = result["summary"]
    assert isinstance(summary, str)
    assert set(_summary_sentences(summary)) <= _sentences(TCP_CONGESTION_EN)
    assert "congestion" in summary.lower()
    assert ". " in summary  # Latin sentences are joined with a space
    assert result["language"] == "en"
    questions = result["open_questions"]
    assert isinstance(questions, list)
    assert len(questions) == 1
    assert "wireless" in questions[0]


def test_mixed_summary() -> None:
    result = summarize("梯度下降 gradient descent", GRADIENT_DESCENT_MIXED)
    summary = result["summary"]
    assert isinstance(summary, str)
    assert set(_summary_sentences(summary)) <= _sentences(GRADIENT_DESCENT_MIXED)
    assert "gradient" in summary.lower()
    assert result["language"] == "mixed"
    # The learner said they were unsure about mini-batch, and never answered the saddle point question.
    questions = result["open_questions"]
    assert isinstance(questions, list)
    assert any("mini-batch" in q for q in questions)
    assert any("saddle point" in q for q in questions)


@pytest.mark.parametrize("name", sorted(CONVERSATIONS))
def test_token_counts(name: str) -> None:
    conversation = CONVERSATIONS[name]
    result = summarize(TOPICS[name], conversation, max_sentences=2, max_points=3)
    everything = "\n".join([TOPICS[name], *(m["content"] for m in conversation)])
    assert result["tokens_in"] == count_tokens(everything)
    key_points = result["key_points"]
    questions = result["open_questions"]
    assert isinstance(key_points, list)
    assert isinstance(questions, list)
    produced = "\n".join([str(result["summary"]), *key_points, *questions])
    assert result["tokens_out"] == count_tokens(produced)
    assert 0 < int(str(result["tokens_out"])) < int(str(result["tokens_in"]))
    assert len(key_points) <= 3


def test_near_duplicates_are_not_repeated() -> None:
    conversation = [
        {"role": "user", "content": "光合作用把光能转化成化学能。"},
        {"role": "assistant", "content": "对，光合作用把光能转化成化学能。那氧气从哪里来？"},
        {"role": "user", "content": "氧气来自水的分解。光合作用把光能转化成化学能。"},
        {"role": "assistant", "content": "没错，氧气来自水的分解，不是来自二氧化碳。"},
    ]
    result = summarize("光合作用", conversation, max_sentences=3, max_points=5)
    summary = result["summary"]
    key_points = result["key_points"]
    assert isinstance(summary, str)
    assert isinstance(key_points, list)
    everything = _summary_sentences(summary) + key_points
    assert everything.count("光合作用把光能转化成化学能。") <= 1
    assert result["open_questions"] == []


def test_long_sentences_are_shortened_at_boundaries() -> None:
    english = "The sender keeps a congestion window, " + "which grows by one segment each round trip " * 10
    short = shorten(english, 20)
    assert short.endswith("…")
    assert count_tokens(short) <= 21
    assert english.startswith(short[:-1])
    assert short[:-1].split()[-1] in {w.rstrip(",") for w in english.split()}  # no word cut in half
    assert short == "The sender keeps a congestion window…"  # cut at the clause boundary
    chinese = "叶绿素吸收红光和蓝光，" * 10 + "所以叶子是绿色的。"
    short_zh = shorten(chinese, 30)
    assert short_zh == "叶绿素吸收红光和蓝光，叶绿素吸收红光和蓝光…"
    assert shorten("短句。", 30) == "短句。"


def test_whitespace_messages_do_not_crash_and_empty_conversation_raises() -> None:
    conversation = [
        {"role": "assistant", "content": "   "},
        {"role": "user", "content": "Congestion control stops senders from flooding the network."},
        {"role": "assistant", "content": ""},
    ]
    result = summarize("congestion control", conversation)
    assert result["summary"] == "Congestion control stops senders from flooding the network."
    assert result["key_points"] == []
    with pytest.raises(ValueError, match="no text"):
        summarize("topic", [{"role": "user", "content": "  \n "}])
    with pytest.raises(ValueError, match="no text"):
        summarize("topic", [])


def test_key_points_skip_hedges_and_semicolon_clauses_end_cleanly() -> None:
    conversation = [
        {"role": "user", "content": "A hash table maps each key to a bucket with a hash function."},
        {"role": "assistant", "content": "What is the load factor of a hash table?"},
        {
            "role": "user",
            "content": "The load factor is the number of entries divided by the number of buckets; "
            "a high load factor means more collisions in each bucket. I'm not sure about the load factor.",
        },
    ]
    result = summarize("hash tables", conversation, max_sentences=2)
    summary = result["summary"]
    key_points = result["key_points"]
    assert isinstance(summary, str)
    assert isinstance(key_points, list)
    assert all("not sure" not in point for point in key_points)
    assert ";" not in summary
    assert summary.endswith(".")


def test_shorten_english_without_clauses_cuts_between_words() -> None:
    sentence = " ".join(["photosynthesis converts light energy into chemical energy"] * 10)
    short = shorten(sentence, 15)
    assert short.endswith("…")
    assert count_tokens(short) <= 15
    assert sentence.startswith(short[:-1])
    assert sentence[len(short) - 1] == " "  # the cut is at a word boundary
