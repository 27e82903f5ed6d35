"""Language-aware tokens: index terms, sentences, token estimates, for Chinese, English and mixed text."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator

#: Han ideographs (+ extensions), kana and hangul: scripts written without spaces between words.
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af\U00020000-\U0002ebef"
CJK_RE = re.compile(f"[{CJK_CHARS}]")
CJK_SPLIT = re.compile(f"([{CJK_CHARS}]+)")
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")

_ENGLISH_STOPWORD_TEXT = """a about above after again against all also am an and any are aren't as at be
because been before being below between both but by can can't cannot could couldn't did didn't do does
doesn't doing don't down during each either else etc even ever every few for from further get gets got
had hadn't has hasn't have haven't having he he'd he's her here hers herself him himself his how i i'd
i'll i'm i've if in into is isn't it it's its itself just let let's may maybe me might more most much
must mustn't my myself no nor not now of off ok okay on once only or other ought our ours ourselves out
over own quite rather really same shall she she's should shouldn't so some such than that that's the
their theirs them themselves then there there's these they they'd they'll they're they've this those
through to too under until up upon us very was wasn't we we'd we'll we're we've were weren't what what's
when where which while who who's whom whose why will with won't would wouldn't yeah yes yet you you'd
you'll you're you've your yours yourself yourselves um uh hmm oh e.g i.e vs via per"""
_FUNCTION_WORD_TEXT = """为什么 什么样 是不是 也就是 怎么样 什么 怎么 因为 所以 但是 然后 如果 就是 可以
还是 一个 一些 这个 那个 这些 那些 这样 那样 我们 你们 他们 它们 她们 自己 觉得 知道 应该 其实 没有 不是
的话 比如 例如 已经 非常 一下 一样 那么 这么 怎样 如何 哪里 哪些 可能 对吧 有点 一点 而且 并且 或者 以及
还有 虽然 不过 只是 只要"""
_ABBREVIATION_TEXT = "e.g i.e mr mrs ms dr prof st vs etc cf fig eq approx vol al jr sr inc ltd dept"

ENGLISH_STOPWORDS = frozenset(_ENGLISH_STOPWORD_TEXT.split())
#: Characters that (almost) never sit inside a content word: key-idea phrases are split there.
CJK_BREAK_CHARS = re.compile("[是在和与及或也就都而我你他她它们这那把被很又但么让给从到里越]")
_GENERIC_CJK_TEXT = """问题 东西 时候 过程 方面 情况 例子 意思 方法 地方 不错 很好 好的 没关系 关系 记得
清楚 确定 理解 解释 讲讲 讲一讲 说说 试着 起来 分别 具体 另外 最后 同时 主要 通常 大多数 大多 多数 很多
所有 之间 里面 出来 下来 下去 进行 发生 产生 需要 能够 开始 今天 提到 看到 本来 一直 完全 只有 一种 两个
一起 首先 其次 总之 当然 确实 真的 直接 变成 成为 用来 利用 之前 之后 以后 以前 后面 前面 这里 那里 到底
学习者 导师 能用 还能 决定 阶段 部分 包括 比较 更多 区别 明白 不会 容易 一次 每次 只用"""
_GENERIC_EN_TEXT = """good great right well thing things way ways example explain own words question
answer talk actually basically kind sort lot lots pretty think know mean means say said like also use used
uses using make makes made goes go going come comes happen happens happened stuff something everything
anything nothing one two three first second last next real sure thought honestly never always often
sometimes usually case cases idea let tell try decide change changes life opens beginning called call
calls give gives given keep keeps number numbers handle handles handled hold holds held take takes took
taken find finds found need needs needed work works worked want wants see sees saw look looks help helps
show shows ask asks asked"""
#: Words too general to be key ideas ("问题", "thing"): key-idea phrases are split there.
CJK_GENERIC_WORDS = re.compile("|".join(sorted(_GENERIC_CJK_TEXT.split(), key=len, reverse=True)))
ENGLISH_GENERIC_WORDS = frozenset(_GENERIC_EN_TEXT.split())

#: Function characters: a CJK bigram made only of these is not an index term.
CJK_STOP_CHARS = frozenset(
    "的了是在和也就都而及与这那我你他她它们吗呢吧啊个有么着把被让给对从到说要会可以之其或但还很又不没一哦嗯呀嘛啦"
    "所为些什怎样如果呗哈哪谁每各该此种将于等因然后再才已得地"
)
#: Particles that never sit inside a content word (apart from a few listed words): CJK runs split there.
_PARTICLES = "的了吗呢吧啊呀嘛啦哦嗯呗"
_PARTICLE_WORDS = ("目的", "的确", "了解", "了不起")
_PARTICLE_RE = re.compile(f"({'|'.join(_PARTICLE_WORDS)})|[{_PARTICLES}]")
#: Multi-character function words, removed from CJK runs before bigrams are formed.
CJK_FUNCTION_WORDS = tuple(_FUNCTION_WORD_TEXT.split())
_FUNCTION_RE = re.compile("|".join(sorted(CJK_FUNCTION_WORDS, key=len, reverse=True)))
LATIN_WORD = re.compile(r"[^\W_]+(?:['’][A-Za-z]+)?(?:[-+=.][^\W_]+)*(?:\+\+|#)?")
_UNIT = re.compile(r"[^\W\d_]+|\d{1,3}|_+|[^\w\s]+")
_LETTER = re.compile(r"[^\W\d_]")
_LETTERS = re.compile(r"[^\W\d_]+")
_DIGITS_OR_MARKS = re.compile(r"\d{1,3}|_+|[^\w\s]+")

_SENTENCE_END = "。！？；…"
_CLOSERS = "”’\"')\\]」』）》】"
_BOUNDARY = re.compile(rf"\n|[{_SENTENCE_END}]+[{_CLOSERS}]*|(?:\.{{3}}|[.!?;])+[{_CLOSERS}]*")
_ABBREVIATIONS = frozenset(_ABBREVIATION_TEXT.split())
_PREV_WORD = re.compile(r"[\w.]+$")


def is_cjk(char: str) -> bool:
    """Whether one character belongs to a script written without spaces (Han, kana, hangul)."""
    return CJK_RE.match(char) is not None


def cjk_pieces(run: str) -> list[str]:
    """Split a run of CJK characters at particles and function words: what is left are content fragments."""
    return _PARTICLE_RE.sub(lambda m: m.group(1) or " ", _FUNCTION_RE.sub(" ", run)).split()


def _cjk_terms(run: str) -> Iterator[str]:
    for piece in cjk_pieces(run):
        if len(piece) == 1:
            if piece not in CJK_STOP_CHARS:
                yield piece
            continue
        for index in range(len(piece) - 1):
            bigram = piece[index : index + 2]
            if not (bigram[0] in CJK_STOP_CHARS and bigram[1] in CJK_STOP_CHARS):
                yield bigram


def latin_words(segment: str) -> list[str]:
    """Lowercased words of a non-CJK segment, possessive 's dropped; stopwords kept."""
    words = LATIN_WORD.findall(segment.lower().replace("’", "'"))
    return [word[:-2] if word.endswith("'s") else word for word in words]


def latin_tokens(text: str) -> list[str]:
    """Latin-script words of a text as written, CJK runs skipped."""
    return [word for segment in CJK_SPLIT.split(text)[::2] for word in LATIN_WORD.findall(segment)]


def stem(word: str) -> str:
    """A light English stem: plural endings removed (windows -> window, policies -> policy)."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """Index terms: lowercased Latin words minus stopwords, and CJK character bigrams minus function words."""
    normal = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for index, segment in enumerate(CJK_SPLIT.split(normal)):
        if index % 2:
            out.extend(_cjk_terms(segment))
        else:
            out.extend(w for w in latin_words(segment) if len(w) > 1 and w not in ENGLISH_STOPWORDS)
    return out


def _ascii_boundary(text: str, sentence_start: int, match: re.Match[str]) -> bool:
    end = match.end()
    if end >= len(text) or is_cjk(text[end]):
        return True
    if not text[end].isspace():
        return False  # 3.14, node.js, e.g.
    if match.group().rstrip(_CLOSERS) == ".":
        previous = _PREV_WORD.search(text, sentence_start, match.start())
        if previous:
            word = previous.group().lower().rstrip(".")
            if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha() and previous.group().isupper()):
                return False
    return True


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace stripped; punctuation-only pieces join their neighbour."""
    raw: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        found = match.group()
        if found == "\n":
            raw.append((start, match.start()))
        elif found[0] in _SENTENCE_END or _ascii_boundary(text, start, match):
            raw.append((start, match.end()))
        else:
            continue
        start = match.end()
    raw.append((start, len(text)))
    spans: list[tuple[int, int]] = []
    pending: int | None = None
    for begin, end in raw:
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        if begin == end:
            continue
        if not any(char.isalnum() for char in text[begin:end]):
            if spans:
                spans[-1] = (spans[-1][0], end)
            elif pending is None:
                pending = begin
            continue
        spans.append((begin if pending is None else pending, end))
        pending = None
    if pending is not None:
        spans.append((pending, len(text.rstrip())))
    return spans


def split_sentences(text: str) -> list[str]:
    """Sentences of a text in order, end punctuation kept; splits on .!?; 。！？；… and newlines."""
    return [text[begin:end] for begin, end in sentence_spans(text)]


def token_units(text: str) -> Iterator[tuple[int, int, float]]:
    """(start, end, weight) of each unit carrying tokens: CJK character, word, digit group, punctuation."""
    position = 0
    for run in _CJK_RUN.finditer(text):
        yield from _latin_units(text, position, run.start())
        for index in range(run.start(), run.end()):
            yield index, index + 1, 1.0
        position = run.end()
    yield from _latin_units(text, position, len(text))


def _latin_units(text: str, start: int, end: int) -> Iterator[tuple[int, int, float]]:
    for match in _UNIT.finditer(text, start, end):
        size = match.end() - match.start()
        weight = 1.0 + max(0, size - 4) / 6 if text[match.start()].isalpha() else 1.0
        yield match.start(), match.end(), weight


def count_tokens(text: str) -> int:
    """Estimated LLM tokens: ~1 per CJK character, ~1.3 per English word, 1 per punctuation or digit group."""
    if not text:
        return 0
    # The same weights as token_units, summed with C-speed regex scans.
    rest = _CJK_RUN.sub(" ", text)
    words = _LETTERS.findall(rest)
    weight: float = CJK_RE.subn("", text)[1] + len(words) + len(_DIGITS_OR_MARKS.findall(rest))
    weight += sum(len(w) - 4 for w in words if len(w) > 4) / 6
    return max(1, math.ceil(round(weight, 6)))


def script_counts(text: str) -> tuple[int, int]:
    """(CJK characters, other letters) in a text."""
    cjk = CJK_RE.subn("", text)[1]
    letters = _LETTER.subn("", text)[1]
    return cjk, letters - cjk


def language(text: str) -> str:
    """Return "zh" if CJK dominates, "en" if Latin letters do, "mixed" if each is at least 20% of letters."""
    cjk, latin = script_counts(text)
    total = cjk + latin
    if total == 0:
        return "en"
    if cjk >= 0.2 * total and latin >= 0.2 * total:
        return "mixed"
    return "zh" if cjk > latin else "en"


#: Technical-looking words: acronyms (ATP, ACKs), CamelCase, letters with digits (gpt-4, e=mc2).
TECHNICAL = re.compile(r"^[A-Z][A-Z0-9]+s?$|[a-z][A-Z]|[A-Za-z][-=]?\d|\d[-=]?[A-Za-z]")
_WORD_OR_MARK = re.compile(LATIN_WORD.pattern + r"|[^\w\s]")
_SKIP_WORDS = ENGLISH_STOPWORDS | ENGLISH_GENERIC_WORDS


def _latin_runs(segment: str) -> list[list[str]]:
    runs: list[list[str]] = [[]]
    for token in _WORD_OR_MARK.findall(segment):
        lower = token.lower().replace("’", "'")
        if len(token) < 2 or not token[0].isalnum() or lower in _SKIP_WORDS or lower.isdigit():
            runs.append([])
        else:
            runs[-1].append(token)
    return [run for run in runs if run]


def _windows(length: int, smallest: int, largest: int) -> list[tuple[int, int]]:
    return [(size, i) for size in range(smallest, min(largest, length) + 1) for i in range(length - size + 1)]


def phrases(text: str) -> list[tuple[str, str, bool]]:
    """(key, surface, whole piece?) of candidate phrases: CJK substrings of content pieces, Latin n-grams."""
    found: list[tuple[str, str, bool]] = []
    for index, segment in enumerate(CJK_SPLIT.split(text)):
        if index % 2:
            content = CJK_GENERIC_WORDS.sub(" ", " ".join(cjk_pieces(segment)))
            for piece in CJK_BREAK_CHARS.sub(" ", content).split():
                for size, i in _windows(len(piece), 2, 6):
                    found.append((piece[i : i + size], piece[i : i + size], size == len(piece)))
            continue
        for run in _latin_runs(segment):
            for size, i in _windows(len(run), 1, 4):
                words = run[i : i + size]
                if size > 1 or len(words[0]) > 2 or TECHNICAL.search(words[0]):
                    key = " ".join(stem(word.lower()) for word in words)
                    found.append((key, " ".join(words), size == len(run)))
    return found


def sub_phrases(key: str) -> list[str]:
    """Proper sub-phrases of a phrase key, shortest first: CJK substrings of 2+ characters, or word runs."""
    if is_cjk(key[0]):
        return [key[i : i + size] for size, i in _windows(len(key), 2, len(key) - 1)]
    words = key.split()
    return [" ".join(words[i : i + size]) for size, i in _windows(len(words), 1, len(words) - 1)]


def contains_phrase(outer: str, inner: str) -> bool:
    """Whether phrase key inner is inside outer: as a substring (CJK) or as whole words (Latin)."""
    return inner in outer if is_cjk(inner[0]) else f" {inner} " in f" {outer} "
