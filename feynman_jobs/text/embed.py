"""Deterministic hashing embeddings (no model weights) and cosine top-k search."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
from numpy.typing import NDArray

from feynman_jobs.text.tokens import is_cjk, terms

#: Weight of a term's sub-features (Latin character trigrams, CJK characters) relative to the term.
SUBWORD_WEIGHT = 0.5
_CACHE_LIMIT = 200_000


def _bucket(feature: str, dim: int) -> tuple[int, float]:
    """Stable (index, sign) of a feature: blake2b, so identical in every process and on every machine."""
    value = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "little")
    return value % dim, -1.0 if value >> 63 else 1.0


class HashingEmbedder:
    """Feature-hashed bag of terms: word unigrams and CJK bigrams, plus subword features, sublinear tf."""

    def __init__(self, dim: int = 384) -> None:
        if dim < 1:
            raise ValueError("dim must be at least 1")
        self.dim = dim
        self.name = f"hashing-v1-{dim}"
        self._terms: dict[str, tuple[list[int], list[float]]] = {}
        self._subwords: dict[str, tuple[int, float]] = {}

    def _subword(self, part: str) -> tuple[int, float]:
        found = self._subwords.get(part)
        if found is None:
            found = self._subwords[part] = _bucket("s:" + part, self.dim)
        return found

    def _features(self, term: str) -> tuple[list[int], list[float]]:
        """Hashed columns and signed weights of one term and its subwords, memoised."""
        found = self._terms.get(term)
        if found is not None:
            return found
        if is_cjk(term[0]):
            parts = list(term) if len(term) > 1 else []  # the characters of a bigram
        else:
            padded = f"<{term}>"
            parts = [padded[i : i + 3] for i in range(len(padded) - 2)]
        index, sign = _bucket("t:" + term, self.dim)
        columns, weights = [index], [sign]
        share = SUBWORD_WEIGHT / math.sqrt(len(parts)) if parts else 0.0
        for part in parts:
            index, sign = self._subword(part)
            columns.append(index)
            weights.append(sign * share)
        if len(self._terms) >= _CACHE_LIMIT:
            self._terms.clear()
            self._subwords.clear()
        self._terms[term] = (columns, weights)
        return columns, weights

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        """One L2-normalised float32 row per text; a text without terms gets a zero row."""
        columns: list[int] = []
        weights: list[float] = []
        sizes: list[int] = []
        for text in texts:
            before = len(columns)
            for term, count in Counter(terms(text)).items():
                term_columns, term_weights = self._features(term)
                columns.extend(term_columns)
                if count == 1:
                    weights.extend(term_weights)
                else:  # sublinear tf
                    scale = 1.0 + math.log(count)
                    weights.extend([weight * scale for weight in term_weights])
            sizes.append(len(columns) - before)
        if not columns:
            return np.zeros((len(texts), self.dim), dtype=np.float32)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), sizes)
        flat = rows * self.dim + np.array(columns, dtype=np.int64)
        matrix = np.bincount(flat, weights=np.array(weights), minlength=len(texts) * self.dim)
        matrix = matrix.reshape(len(texts), self.dim)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised: NDArray[np.float64] = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        return normalised.astype(np.float32)
