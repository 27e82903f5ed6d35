"""Heuristic Feynman-technique review of a learner's explanation: key ideas, coverage, jargon, gaps."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

from feynman_jobs.text import tokens as tk
from feynman_jobs.text.summarize import bounded
from feynman_jobs.text.tokens import is_cjk, stem

_EXPLAINED_AFTER = re.compile(
    r"^\s*[,，:：]?\s*(?:呢|啊|吧|嘛)?[\s，,]*(?:其实|也|就|which |that |basically |just |really |actually )*"
    r"(?:是|指|即|意思是|相当于|叫做|叫|称为|比如|例如|像|因为|（|\(|:|：|=|is\b|are\b|was\b|means?\b|meaning\b"
    r"|refers? to\b|stands? for\b|i\.e\.|e\.g\.|like\b|because\b|aka\b|—|--)",
    re.IGNORECASE,
)
_EXPLAINED_BEFORE = re.compile(
    r"(?:叫做|叫|称为|称作|即|called|known as|named|termed|aka|i\.e\.,?)\s*[「“]?$", re.I
)
_TUTOR_ROLES = frozenset({"assistant", "system"})
#: Characters of a conversation reviewed (a long tutoring session is ~20,000); longer messages are cut.
MAX_CHARS = 100_000
#: A key idea scores at least this fraction of the best one (a noun the tutor used once is not a key idea).
FLOOR = 0.2


@dataclass
class _Idea:
    count: int = 0
    roles: set[str] = field(default_factory=set)
    forms: Counter[str] = field(default_factory=Counter)
    whole: bool = False
    topic_phrase: bool = False
    asked: bool = False
    in_topic: bool = False


def _short_piece(key: str, whole: bool) -> bool:
    """A whole piece short enough to be a word or term on its own: up to 4 CJK characters or 3 words."""
    return whole and (len(key) <= 4 if is_cjk(key[0]) else key.count(" ") < 3)


def _collect(topic: str, conversation: list[dict[str, str]]) -> dict[str, _Idea]:
    messages = [("topic", topic)] + [(m.get("role", "user"), m.get("content") or "") for m in conversation]
    sentences = [(role, sentence) for role, content in messages for sentence in tk.split_sentences(content)]
    # First pass: counts only, so that the many phrases seen once, and not a whole piece, cost no more.
    counts: Counter[str] = Counter()
    kept: set[str] = set()
    for role, sentence in sentences:
        for key, _, whole in tk.phrases(sentence):
            counts[key] += 1
            if role == "topic" or _short_piece(key, whole):
                kept.add(key)
    ideas: dict[str, _Idea] = {}
    for role, sentence in sentences:
        asked = role in _TUTOR_ROLES and sentence.rstrip("”’\"')]」』）》】 ").endswith(("?", "？"))
        for key, surface, whole in tk.phrases(sentence):
            if counts[key] < 2 and key not in kept:
                continue
            idea = ideas.setdefault(key, _Idea())
            if role == "topic":  # the topic's own phrases ("光合作用", "hash table") and their parts
                idea.in_topic = True
                idea.topic_phrase |= whole
                continue
            idea.count += 1
            idea.roles.add(role)
            idea.forms[surface] += 1
            idea.whole |= _short_piece(key, whole)
            idea.asked |= asked
    return ideas


def _score(key: str, idea: _Idea, residual: int, topic_keys: set[str]) -> float:
    score = 1.0 + math.log(max(1, residual))
    if idea.roles & _TUTOR_ROLES:  # what the tutor brings up matters; what both talk about, more
        score *= 1.5 if "user" in idea.roles else 1.2
    if idea.topic_phrase:
        score *= 2.0
    elif residual > 1 and (idea.in_topic or any(part in topic_keys for part in tk.sub_phrases(key))):
        score *= 1.4  # a phrase with a topic word, said more than once: "congestion window"
    technical = any(tk.TECHNICAL.search(word) for word in max(idea.forms, key=idea.forms.__getitem__).split())
    score *= 1.3 if idea.asked else 1.0
    score *= 1.3 if technical else 1.0
    if is_cjk(key[0]):
        score *= {2: 1.0, 3: 1.3, 4: 1.3}.get(len(key), 1.1)
    else:
        words = len(re.split(r"[\s-]+", key))  # "mini-batch" is a phrase too
        score *= {1: 1.0 if technical else 0.7, 2: 1.3, 3: 1.2}.get(words, 1.0)
    return score * (0.6 if residual < 2 and not idea.in_topic and not technical else 1.0)


def key_ideas(topic: str, conversation: list[dict[str, str]], limit: int) -> list[tuple[str, str]]:
    """(key, readable form) of the most salient phrases; of overlapping ones, the longer if it scores half."""
    ideas = _collect(topic, conversation)
    # A phrase nearly always seen inside a longer one (光合作 in 光合作用) is absorbed by it; a one-off longer
    # phrase absorbs nothing, and only the topic's own phrases absorb the topic's.
    extension: Counter[str] = Counter()
    topic_extension: Counter[str] = Counter()
    for key, idea in ideas.items():
        for part in tk.sub_phrases(key)[-2:]:  # the two sub-phrases one unit shorter
            if idea.count >= 2:
                extension[part] = max(extension[part], idea.count)
            if idea.in_topic:
                topic_extension[part] = max(topic_extension[part], idea.count)
    candidates = {
        key: idea
        for key, idea in ideas.items()
        if (idea.count >= 2 or idea.whole or idea.in_topic)
        and (topic_extension if idea.in_topic else extension)[key] < 0.75 * max(1, idea.count)
    }
    # Occurrences of a phrase outside the longer candidates containing it (one-off phrases do not count).
    residual = {key: idea.count for key, idea in candidates.items()}
    for key in sorted(candidates, key=lambda k: -len(k if is_cjk(k[0]) else k.split())):
        if candidates[key].count >= 2:
            for part in set(tk.sub_phrases(key)):
                if part in residual:
                    residual[part] -= max(0, residual[key])
    topic_keys = {key for key, idea in ideas.items() if idea.in_topic}
    kept = [k for k, idea in candidates.items() if idea.count and (residual[k] >= 1 or idea.in_topic)]
    score = {k: _score(k, candidates[k], residual[k], topic_keys) for k in kept}
    chosen: list[tuple[str, str]] = []
    for key in sorted(kept, key=lambda k: -score[k]):  # stable: ties keep the order of first mention
        clash = [
            i
            for i, (other, _) in enumerate(chosen)
            if tk.contains_phrase(key, other) or tk.contains_phrase(other, key)
        ]
        forms = candidates[key].forms
        lowered = [form for form in forms if form == form.lower()]
        entry = (key, min(lowered or list(forms), key=lambda form: (-forms[form], len(form))))
        if not clash and len(chosen) < limit and score[key] >= FLOOR * max(score.values()):
            chosen.append(entry)
        elif clash and all(
            _reads_better(key, chosen[i][0], candidates[key].in_topic)
            and score[key] >= score[chosen[i][0]] / 2
            for i in clash
        ):  # the longer phrase takes the place of the first it contains: "hash", "table" -> "hash table"
            chosen[clash[0]] = entry
            for i in reversed(clash[1:]):
                del chosen[i]
    return chosen


def _reads_better(longer: str, shorter: str, in_topic: bool) -> bool:
    """Whether a phrase replaces a chosen one inside it: a lone word or 2-character word, or for the topic."""
    if not tk.contains_phrase(longer, shorter):
        return False
    return in_topic or (len(shorter) <= 2 if is_cjk(shorter[0]) else " " not in shorter)


def _stems(text: str) -> str:
    return " " + " ".join(stem(w.lower()) for w in tk.latin_tokens(text)) + " "


def _is_concept(key: str, shown: str) -> bool:
    return len(key) >= 3 if is_cjk(key[0]) else bool(re.search(r"[\s-]", key) or tk.TECHNICAL.search(shown))


def _mentions(key: str, text: str, stems: str) -> bool:
    return key in text if is_cjk(key[0]) else f" {key} " in stems


def _loosely(key: str, sentences: list[tuple[str, str]]) -> bool:
    """A (topic) phrase said in other words: all its words in one sentence, or 2/3 of its CJK bigrams."""
    if is_cjk(key[0]):
        grams = {key[i : i + 2] for i in range(len(key) - 1)}
        return any(3 * sum(gram in text for gram in grams) >= 2 * len(grams) for text, _ in sentences)
    return any(all(f" {word} " in stems for word in key.split()) for _, stems in sentences)


def _explained(key: str, learner: list[str]) -> bool:
    """Whether any learner use of a term comes with an explanation marker right before or after it."""
    if is_cjk(key[0]):
        pattern = re.escape(key)
    else:
        pattern = r"\b" + r"\W+".join(re.escape(w) + r"\w*" for w in key.split()) + r"\b"
    for text in learner:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            if _EXPLAINED_AFTER.search(text[match.end() : match.end() + 40]):
                return True
            if _EXPLAINED_BEFORE.search(text[max(0, match.start() - 12) : match.start()]):
                return True
    return False


def _jargon(learner: list[str], topic: str) -> list[tuple[str, str]]:
    """(key, surface) of technical-looking words the learner used: acronyms, CamelCase, digits, long words."""
    found: dict[str, str] = {}
    for text in learner:
        for word in tk.latin_tokens(text):
            long_word = len(word) >= 12 and word.isalpha() and not word.endswith(("ing", "ed", "ly", "ness"))
            if tk.TECHNICAL.search(word) or long_word:
                found.setdefault(stem(word.lower()), word)
    topic_stems = _stems(topic)
    return [(key, surface) for key, surface in found.items() if f" {key} " not in topic_stems]


_TEMPLATES = {  # (relate, gap in topic, gap, explain, example), Chinese first
    True: (
        "「{x}」和「{y}」有什么关系？",
        "你还没有提到「{x}」，它在「{topic}」中起什么作用？",
        "你还没有提到「{x}」，能讲讲它是什么、为什么重要吗？",
        "你能用自己的话解释一下「{x}」吗？",
        "你提到了「{x}」，能举个简单的例子说明它是什么吗？",
    ),
    False: (
        "How does {x} relate to {y}?",
        "You haven't mentioned {x} yet. What role does it play in {topic}?",
        "You haven't mentioned {x} yet. What is it, and why does it matter?",
        "Can you explain {x} in your own words?",
        "You mentioned {x}. What does it actually mean, in plain words?",
    ),
}


def _follow_ups(
    gaps: list[str], unexplained: list[str], related: dict[str, str], topic: str, chinese: bool, limit: int
) -> list[str]:
    relate, gap_in_topic, gap, explain, example = _TEMPLATES[chinese]
    questions: list[str] = []
    for index in range(max(len(gaps), len(unexplained))):
        if index < len(gaps):
            other = related.get(gaps[index])
            template = relate if other else gap_in_topic if topic else gap
            questions.append(template.format(x=gaps[index], y=other, topic=topic))
        if index < len(unexplained):
            questions.append((example if index % 2 else explain).format(x=unexplained[index]))
    return questions[:limit]


def analyze(topic: str, conversation: list[dict[str, str]], *, max_items: int = 8) -> dict[str, object]:
    """Review a learner's explanation: key ideas, which were covered, gaps, unexplained jargon, follow-ups."""
    everything = "\n".join([topic, *(m.get("content") or "" for m in conversation)])
    conversation = bounded(conversation, MAX_CHARS)
    learner = [m.get("content") or "" for m in conversation if m.get("role") == "user"]
    if not any(text.strip() for text in learner):
        raise ValueError("the conversation has no learner text to analyze")
    ideas = key_ideas(topic, conversation, max_items)
    learner_text, learner_stems = "\n".join(learner), _stems("\n".join(learner))
    topic_stems = _stems(topic)
    in_topic = {key for key, _ in ideas if _mentions(key, topic, topic_stems)}
    said = [(s, _stems(s)) for text in learner for s in tk.split_sentences(text)]
    covered = [
        (key, shown)
        for key, shown in ideas
        if _mentions(key, learner_text, learner_stems) or (key in in_topic and _loosely(key, said))
    ]
    # A bilingual topic ("梯度下降 gradient descent") names one idea twice: either name covers it.
    scripts = {is_cjk(key[0]) for key, _ in covered if key in in_topic}
    covered += [
        (k, s) for k, s in ideas if k in in_topic and (k, s) not in covered and scripts - {is_cjk(k[0])}
    ]
    covered.sort(key=ideas.index)
    gaps = [(key, shown) for key, shown in ideas if (key, shown) not in covered]
    # Concepts: CJK phrases of 3+ characters, Latin phrases and technical words (not "植物", not "packet").
    concepts = [(k, s) for k, s in covered if _is_concept(k, s)]
    # A gap is asked about together with the concept it was most often mentioned with, if any.
    sentences = [(s, _stems(s)) for m in conversation for s in tk.split_sentences(m.get("content") or "")]
    related: dict[str, str] = {}
    for key, shown in gaps:
        together = Counter(
            s
            for sentence, stems in sentences
            if _mentions(key, sentence, stems)
            for k, s in concepts
            if _mentions(k, sentence, stems) and not tk.contains_phrase(key, k)
        )
        if together:
            related[shown] = together.most_common(1)[0][0]
    checks = _jargon(learner, topic) + [(k, s) for k, s in concepts if k not in in_topic]
    unexplained: list[str] = []
    for key, shown in checks:
        if shown.lower() not in (u.lower() for u in unexplained) and not _explained(key, learner):
            unexplained.append(shown)
    unexplained = unexplained[:max_items]
    chinese = tk.language(everything) != "en"
    follow_ups = _follow_ups([s for _, s in gaps], unexplained, related, topic.strip(), chinese, max_items)
    result_text = [s for _, s in ideas] + unexplained + follow_ups
    return {
        "key_ideas": [shown for _, shown in ideas],
        "covered": [shown for _, shown in covered],
        "unexplained_terms": unexplained,
        "gaps": [shown for _, shown in gaps],
        "follow_up_questions": follow_ups,
        "coverage": round(len(covered) / len(ideas), 3) if ideas else 0.0,
        "language": tk.language(everything),
        "tokens_in": tk.count_tokens(everything),
        "tokens_out": tk.count_tokens("\n".join(result_text)),
    }
