"""Extractive summary of a tutoring conversation: TextRank over its sentences, plus its open questions."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from feynman_jobs.text.tokens import (
    CJK_STOP_CHARS,
    count_tokens,
    is_cjk,
    language,
    split_sentences,
    stem,
    terms,
    token_units,
)

DAMPING = 0.85
#: Work bounds: characters read from a conversation, and sentences ranked by TextRank (its matrix is n x n).
MAX_CHARS = 300_000
MAX_RANKED = 800
#: Key points longer than this many tokens are shortened at a clause or word boundary.
POINT_TOKENS = 60
_QUESTION_END = ("?", "？")
_CLOSERS = "”’\"')]」』）》】 "
_TERMINATORS = ".!?;。！？；…"
_CLAUSE_MARKS = "，、；：,;:—"
_WORD_GLUE = frozenset("-=+.'’_")


@dataclass
class Sentence:
    """One sentence of the conversation with where it came from."""

    text: str
    message: int
    role: str
    terms: Counter[str]

    @property
    def is_question(self) -> bool:
        """Whether the sentence ends with a question mark."""
        return self.text.rstrip(_CLOSERS).endswith(_QUESTION_END)


def conversation_sentences(conversation: list[dict[str, str]], *, skip_system: bool = True) -> list[Sentence]:
    """Sentences of every message, in order; system prompts skipped unless nothing else has text."""
    sentences = [
        Sentence(text, index, message.get("role", "user"), Counter(stem(t) for t in terms(text)))
        for index, message in enumerate(conversation)
        for text in split_sentences(message.get("content") or "")
        if not (skip_system and message.get("role") == "system")
    ]
    if not sentences and skip_system:
        return conversation_sentences(conversation, skip_system=False)
    return sentences


def bounded(conversation: list[dict[str, str]], limit: int = MAX_CHARS) -> list[dict[str, str]]:
    """The conversation, its longest messages cut so that it has at most limit characters in all."""
    lengths = sorted(len(m.get("content") or "") for m in conversation)
    remaining = limit
    for index, length in enumerate(lengths):
        share = remaining // (len(lengths) - index)
        if length > share:
            return [{**m, "content": (m.get("content") or "")[:share]} for m in conversation]
        remaining -= length
    return conversation


def _term_matrix(sentences: list[Sentence]) -> NDArray[np.float64]:
    """Unit tf-idf rows over the terms found in two or more sentences (the others add to no dot product)."""
    frequency = Counter(term for sentence in sentences for term in sentence.terms)
    columns = {term: i for i, term in enumerate(t for t, df in frequency.items() if df > 1)}
    matrix = np.zeros((len(sentences), max(1, len(columns))))
    for row, sentence in enumerate(sentences):
        # idf: terms in most sentences (the topic itself) say little about which sentences belong together.
        weights = {
            t: (1.0 + math.log(c)) * math.log1p(len(sentences) / frequency[t])
            for t, c in sentence.terms.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        for term, weight in weights.items():
            if term in columns:
                matrix[row, columns[term]] = weight / norm
    return matrix


def _preselect(sentences: list[Sentence], topic_terms: set[str], limit: int) -> list[int]:
    """Indices of the limit sentences richest in frequent and topic terms (a cheap pass before TextRank)."""
    frequency = Counter(term for sentence in sentences for term in sentence.terms)

    def richness(sentence: Sentence) -> float:
        value = sum(math.log1p(frequency[term]) for term in sentence.terms) / math.sqrt(
            1 + len(sentence.terms)
        )
        return value * (1 + len(topic_terms & sentence.terms.keys()))

    return sorted(sorted(range(len(sentences)), key=lambda i: -richness(sentences[i]))[:limit])


def textrank(sentences: list[Sentence], topic: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sentence scores (PageRank over cosine similarity, teleporting to topic terms) and sentence vectors."""
    n = len(sentences)
    vectors = _term_matrix(sentences)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0.0)
    topic_terms = {stem(t) for t in terms(topic)}
    overlap = np.array(
        [len(topic_terms & s.terms.keys()) / len(topic_terms) if topic_terms else 0.0 for s in sentences]
    )
    teleport = 1.0 + overlap
    teleport /= teleport.sum()
    out_weight = similarity.sum(axis=1, keepdims=True)
    transition = np.where(out_weight > 0, similarity / np.where(out_weight > 0, out_weight, 1.0), teleport)
    rank = np.full(n, 1.0 / n)
    for _ in range(200):
        updated = (1 - DAMPING) * teleport + DAMPING * (transition.T @ rank)
        converged = float(np.abs(updated - rank).sum()) < 1e-10
        rank = updated
        if converged:
            break
    sizes = np.array([informative_size(s, topic, topic_terms) for s in sentences], dtype=float)
    return rank * (1.0 + 0.5 * overlap) * np.minimum(1.0, (sizes + 0.1) / 8), vectors


def informative_size(sentence: Sentence, topic: str, topic_terms: set[str]) -> int:
    """Terms a sentence has beyond the topic: "Good." and "Let's talk about <topic>." have almost none."""
    text = re.sub(re.escape(topic.strip()), " ", sentence.text, flags=re.IGNORECASE) if topic.strip() else ""
    return sum(1 for t in terms(text or sentence.text) if stem(t) not in topic_terms)


def _near_duplicate(vectors: NDArray[np.float64], index: int, chosen: list[int], texts: list[str]) -> bool:
    return any(
        float(vectors[index] @ vectors[other]) >= 0.85 or texts[index] in texts[other] for other in chosen
    )


def shorten(sentence: str, limit: int = POINT_TOKENS) -> str:
    """A sentence over limit tokens cut with an ellipsis at a clause end, else a word or CJK character end."""
    if count_tokens(sentence) <= limit:
        return sentence
    total, end = 0.0, 0
    for _, unit_end, weight in token_units(sentence):
        if total + weight > limit - 1:  # room for the ellipsis
            break
        total, end = total + weight, unit_end
    head = sentence[:end] or sentence[: 4 * max(1, limit - 1)]  # a single overlong "word": cut its letters
    clause = max(head.rfind(mark) for mark in _CLAUSE_MARKS)
    space = head.rstrip().rfind(" ")
    if clause >= len(head) // 3:
        head = head[:clause]
    elif head[-1:].isalnum() and not is_cjk(head[-1]) and sentence[end : end + 1] in _WORD_GLUE and space > 0:
        head = head[:space]  # "gpt-4" is several token units: do not stop inside it
    return head.rstrip(" " + _CLAUSE_MARKS) + "…"


def join_sentences(sentences: list[str]) -> str:
    """Sentences joined into one text: no space after CJK, a space between Latin sentences."""
    text = ""
    for sentence in sentences:
        if sentence[-1] in ";；":  # a clause split off at a semicolon ends the summary's sentence
            sentence = sentence[:-1] + ("。" if sentence[-1] == "；" else ".")
        elif not sentence.rstrip(_CLOSERS).endswith(tuple(_TERMINATORS)):
            sentence += "。" if is_cjk(sentence[-1]) else "."
        if text and not (_wide(text[-1]) or _wide(sentence[0])):
            text += " "
        text += sentence
    return text


def _wide(char: str) -> bool:
    return is_cjk(char) or "\u3000" <= char <= "\u303f" or "\uff00" <= char <= "\uffef"


_UNSURE = re.compile(
    r"not (?:really |quite |too |very )?sure|(?:don'?t|do not) (?:know|remember)|no idea|never thought"
    r"|can'?t remember|不(?:太|是很|大)?(?:知道|清楚|确定|懂|记得)|说不清|记不清|没想过",
    re.IGNORECASE,
)
#: A reply with at least this many terms, and no sign of doubt, answers the last question it follows.
SUBSTANTIVE_TERMS = 6


@dataclass
class Reply:
    """The message answering a question: its text, and each sentence with its (stemmed) terms."""

    text: str
    sentences: list[tuple[str, set[str]]]


def reply_to(conversation: list[dict[str, str]], question: Sentence) -> Reply | None:
    """The next message with text from another role than the question's, if any."""
    for message in conversation[question.message + 1 :]:
        content = message.get("content") or ""
        if message.get("role") != question.role and content.strip():
            return Reply(content, [(s, {stem(t) for t in terms(s)}) for s in split_sentences(content)])
    return None


def answered(question: Sentence, context: Counter[str], reply: Reply) -> bool:
    """Whether a reply sentence shares a term (or three content CJK characters) with a question, unhedged."""
    keys = question.terms.keys() | context.keys()
    chars = {c for c in question.text if is_cjk(c) and c not in CJK_STOP_CHARS}
    return any(
        (found & keys or len(chars & set(sentence)) >= 3) and not _UNSURE.search(sentence)
        for sentence, found in reply.sentences
    )


def open_questions(conversation: list[dict[str, str]], sentences: list[Sentence]) -> list[str]:
    """Questions that the next message from the other side did not take up."""
    found: list[str] = []
    replies: dict[int, Reply | None] = {}
    last_question = {s.message: i for i, s in enumerate(sentences) if s.is_question}
    for index, question in enumerate(sentences):
        if not question.is_question or question.text in found:
            continue
        if question.message not in replies:
            replies[question.message] = reply_to(conversation, question)
        reply = replies[question.message]
        if reply is None:
            found.append(question.text)
            continue
        previous = sentences[index - 1] if index else None
        # The sentence before a question often names what "it" is: "Let's talk about X. What does it solve?"
        same_message = previous is not None and previous.message == question.message
        context = previous.terms if same_message and previous and not previous.is_question else Counter()
        # A sure, substantial reply answers the last question of a message even in other words.
        size = sum(len(found_terms) for _, found_terms in reply.sentences)
        last = last_question[question.message] == index
        substantive = last and size >= SUBSTANTIVE_TERMS and not _UNSURE.search(reply.text)
        if not substantive and not answered(question, context, reply):
            found.append(question.text)
    return found


def summarize(
    topic: str, conversation: list[dict[str, str]], *, max_sentences: int = 3, max_points: int = 5
) -> dict[str, object]:
    """Summary, key points and open questions of a conversation, extracted from its own sentences."""
    everything = "\n".join(m.get("content") or "" for m in conversation)
    conversation = bounded(conversation)
    every_sentence = conversation_sentences(conversation)
    if not every_sentence:
        raise ValueError("the conversation has no text to summarize")
    sentences = every_sentence
    if len(sentences) > MAX_RANKED:
        sentences = [sentences[i] for i in _preselect(sentences, {stem(t) for t in terms(topic)}, MAX_RANKED)]
    scores, vectors = textrank(sentences, topic)
    topic_terms = {stem(t) for t in terms(topic)}
    texts = [s.text for s in sentences]
    order = sorted(range(len(sentences)), key=lambda i: (-scores[i], i))
    statements = [i for i in order if not sentences[i].is_question and sentences[i].terms]
    fallback = [i for i in order if sentences[i].is_question or not sentences[i].terms]
    chosen: list[int] = []
    for index in statements + fallback:
        if len(chosen) >= max_sentences:
            break
        if not _near_duplicate(vectors, index, chosen, texts):
            chosen.append(index)
    points: list[int] = []
    for index in statements:  # a point says something: not "Good.", not "I'm not sure about X."
        if len(points) >= max_points:
            break
        if (
            index in chosen
            or _UNSURE.search(texts[index])
            or informative_size(sentences[index], topic, topic_terms) < 3
        ):
            continue
        if not _near_duplicate(vectors, index, chosen + points, texts):
            points.append(index)
    summary = join_sentences([texts[i] for i in sorted(chosen)])
    key_points = [shorten(texts[i]) for i in points]
    questions = open_questions(conversation, every_sentence)[:max_points]
    return {
        "summary": summary,
        "key_points": key_points,
        "open_questions": questions,
        "language": language(f"{topic}\n{everything}"),
        "tokens_in": count_tokens(f"{topic}\n{everything}"),
        "tokens_out": count_tokens("\n".join([summary, *key_points, *questions])),
    }
