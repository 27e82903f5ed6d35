"""Offline text processing for Chinese, English and mixed text: summaries, reviews, chunks, embeddings."""

from __future__ import annotations

from feynman_jobs.text.analyze import analyze
from feynman_jobs.text.chunk import chunk_text
from feynman_jobs.text.embed import HashingEmbedder, cosine_top_k
from feynman_jobs.text.summarize import summarize
from feynman_jobs.text.tokens import count_tokens, language, split_sentences, terms

__all__ = [
    "HashingEmbedder",
    "analyze",
    "chunk_text",
    "cosine_top_k",
    "count_tokens",
    "language",
    "split_sentences",
    "summarize",
    "terms",
]
