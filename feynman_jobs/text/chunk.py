"""Split text into overlapping chunks of bounded token count, on sentence boundaries where possible."""

from __future__ import annotations

import bisect
import math
from itertools import accumulate

from feynman_jobs.text.tokens import sentence_spans, token_units

_CLAUSE_MARKS = frozenset("，、；：,;:—")
#: A cut at a sentence (or clause) end is taken if the chunk is at least this full; else words are cut.
MIN_FILL = 0.5
#: Chunk size and overlap in count_tokens units: a few sentences, repeating the previous chunk's tail.
CHUNK_TOKENS = 200
CHUNK_OVERLAP_TOKENS = 40


def _units(text: str, cap: float) -> list[tuple[int, int, float]]:
    """Token units of a text; words heavier than cap tokens are split into slices that are not."""
    units: list[tuple[int, int, float]] = []
    for start, end, weight in token_units(text):
        if weight <= cap:
            units.append((start, end, weight))
            continue
        size = max(1, int(4 + 6 * (cap - 1)))  # letters a unit of at most cap tokens can hold
        for begin in range(start, end, size):
            piece = min(end, begin + size) - begin
            units.append((begin, begin + piece, 1.0 + max(0, piece - 4) / 6))
    return units


def chunk_text(
    text: str, *, max_tokens: int = CHUNK_TOKENS, overlap_tokens: int = CHUNK_OVERLAP_TOKENS
) -> list[str]:
    """Chunks of at most max_tokens (count_tokens), each starting with ~overlap_tokens of the previous one."""
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError("overlap_tokens must be at least 0 and less than max_tokens")
    units = _units(text, float(max_tokens - overlap_tokens))
    if not units:
        return []
    ends = {end for _, end in sentence_spans(text)}
    sentence_end = [end in ends for _, end, _ in units]
    clause_end = [text[end - 1] in _CLAUSE_MARKS for _, end, _ in units]
    prefix = [0.0, *accumulate(weight for _, _, weight in units)]
    chunks: list[str] = []
    start, previous_cut = 0, 0
    while True:
        # The furthest unit count that fits: prefix[stop] - prefix[start] <= max_tokens.
        stop = bisect.bisect_right(prefix, prefix[start] + max_tokens + 1e-9) - 1
        stop = max(stop, start + 1)
        if stop >= len(units):
            chunks.append(text[units[start][0] : units[-1][1]])
            return chunks
        cut = stop
        for boundary in (sentence_end, clause_end):
            ends_here = [i + 1 for i in range(max(start, previous_cut), stop) if boundary[i]]
            if ends_here and prefix[ends_here[-1]] - prefix[start] >= MIN_FILL * max_tokens:
                cut = ends_here[-1]
                break
        chunks.append(text[units[start][0] : units[cut - 1][1]])
        # The next chunk repeats the tail of this one: whole sentences if they fit, else clauses, else words.
        first = bisect.bisect_left(prefix, prefix[cut] - overlap_tokens - 1e-9, start + 1, cut + 1)
        next_start = cut
        for boundary in (sentence_end, clause_end):
            starts = [i for i in range(first, cut) if boundary[i - 1]]
            if starts:
                next_start = starts[0]
                break
        else:
            next_start = first if overlap_tokens else cut
        start, previous_cut = next_start, cut


def chunked_tokens(tokens: int) -> int:
    """Tokens the chunks of a text of `tokens` tokens add up to (overlaps counted again), for estimates."""
    return math.ceil(tokens * CHUNK_TOKENS / (CHUNK_TOKENS - CHUNK_OVERLAP_TOKENS))
