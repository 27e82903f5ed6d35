"""Tokens: index terms, sentences, token estimates and language detection on zh, en and mixed text."""

from __future__ import annotations

import re

import pytest

from feynman_jobs.text.tokens import count_tokens, language, split_sentences, terms


def test_terms_english_lowercased_without_stopwords() -> None:
    assert terms("The Congestion window is what limits the sender.") == [
        "congestion",
        "window",
        "limits",
        "sender",
    ]


def test_terms_keep_technical_words_whole() -> None:
    found = terms("GPT-4 knows e=mc2, pi is 3.14 and the receiver's window uses TCP/IP.")
    assert {"gpt-4", "e=mc2", "3.14", "receiver", "tcp", "ip"} <= set(found)
    assert "the" not in found
    assert "is" not in found


def test_terms_chinese_bigrams() -> None:
    assert terms("光合作用") == ["光合", "合作", "作用"]
    assert terms("光") == ["光"]


def test_terms_chinese_function_words_do_not_dominate() -> None:
    found = terms("我们觉得这个就是光合作用的过程，对吧？")
    assert {"光合", "合作", "作用", "过程"} <= set(found)
    for noise in ("我们", "这个", "就是", "用的", "的过", "对吧"):
        assert noise not in found


def test_terms_mixed_text() -> None:
    found = terms("我们用 gradient descent 来更新参数")
    assert {"gradient", "descent", "更新", "参数"} <= set(found)


def test_split_sentences_chinese_paragraph() -> None:
    text = "光合作用发生在叶绿体里。叶绿素吸收光能！那暗反应呢？它不直接需要光；但需要光反应的产物……\n下一段"
    assert split_sentences(text) == [
        "光合作用发生在叶绿体里。",
        "叶绿素吸收光能！",
        "那暗反应呢？",
        "它不直接需要光；",
        "但需要光反应的产物……",
        "下一段",
    ]


def test_split_sentences_english_keeps_decimals_and_abbreviations() -> None:
    text = "Pi is about 3.14. Use a cap, e.g. the window size. Dr. Smith agrees! Does it work? Yes."
    assert split_sentences(text) == [
        "Pi is about 3.14.",
        "Use a cap, e.g. the window size.",
        "Dr. Smith agrees!",
        "Does it work?",
        "Yes.",
    ]


def test_split_sentences_mixed_and_closing_quotes() -> None:
    text = "他说：“TCP 会降速。”然后呢?我们用 mini-batch."
    assert split_sentences(text) == ["他说：“TCP 会降速。”", "然后呢?", "我们用 mini-batch."]


def test_split_sentences_drops_empties_and_loses_no_text() -> None:
    text = "  第一句。。 \n\n Second one!  ……  \n"
    sentences = split_sentences(text)
    assert sentences == ["第一句。。", "Second one!  ……"]
    assert re.sub(r"\s", "", "".join(sentences)) == re.sub(r"\s", "", text)
    assert split_sentences("   \n ") == []


def test_count_tokens_chinese_about_one_per_character() -> None:
    assert count_tokens("光合作用") == 4
    assert count_tokens("光合作用是植物的过程。") == 11


def test_count_tokens_english_sentence() -> None:
    assert 10 <= count_tokens("The quick brown fox jumps over the lazy dog today.") <= 16
    assert count_tokens("photosynthesis") >= 2


def test_count_tokens_edges() -> None:
    assert count_tokens("") == 0
    assert count_tokens(" ") == 1
    assert count_tokens("!") == 1
    assert count_tokens("12345") == 2
    assert count_tokens("用 gradient 更新") == 5  # 3 CJK characters, ~1.7 for an 8-letter word


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("光合作用是植物利用光能的过程。", "zh"),
        ("Congestion control keeps TCP from overwhelming the network.", "en"),
        ("我们来聊 gradient descent，它用 loss 的 gradient 更新参数", "mixed"),
        ("光反应在类囊体膜上进行，产生 ATP。", "zh"),
        ("", "en"),
    ],
)
def test_language(text: str, expected: str) -> None:
    assert language(text) == expected
