"""The embedder provider: offline feature hashing by default, or an OpenAI-compatible /embeddings endpoint.

One embedder per process: the worker parent builds it (worker_config) so every forked work horse
inherits it instead of loading its own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import httpx
import numpy as np
from numpy.typing import NDArray

from feynman_jobs.errors import ModelOutputError
from feynman_jobs.providers.http import client, post_json, with_inline_retry
from feynman_jobs.settings import Settings
from feynman_jobs.text.embed import HashingEmbedder

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embedded:
    """L2-normalised float32 rows, one per text, and the tokens the endpoint billed (0 offline)."""

    vectors: NDArray[np.float32]
    tokens: int


class Embedder(Protocol):
    """Texts to normalised vectors; `name` identifies the vector space (stored with the vectors)."""

    name: str

    def embed(self, texts: list[str]) -> Embedded:
        """Embed the texts, in batches where that matters."""
        ...


class HashingProvider:
    """HashingEmbedder: no download, Chinese by character bigrams, thousands of chunks a second."""

    def __init__(self) -> None:
        self._model = HashingEmbedder()
        self.name = self._model.name

    def embed(self, texts: list[str]) -> Embedded:
        """Hash the texts' terms into vectors."""
        return Embedded(self._model.embed(texts), 0)


class EndpointEmbedder:
    """An OpenAI-compatible POST /embeddings endpoint, `batch` texts per request."""

    def __init__(self, settings: Settings) -> None:
        assert settings.embeddings_base_url is not None
        self.model = settings.embeddings_model
        self.name = settings.embeddings_model
        self.batch = settings.embeddings_batch
        self._http: httpx.Client = client(
            settings.embeddings_base_url, settings.embeddings_api_key, settings.llm_timeout_s
        )

    def embed(self, texts: list[str]) -> Embedded:
        """Embed in batches; rows come back normalised (cosine is a dot product in the store)."""
        rows: list[list[float]] = []
        tokens = 0
        for start in range(0, len(texts), self.batch):
            batch = texts[start : start + self.batch]
            what = f"embeddings {self.model}"
            body = {"model": self.model, "input": batch}
            data = with_inline_retry(partial(post_json, self._http, "embeddings", body, what=what), what=what)
            items = data.get("data")
            if not isinstance(items, list) or len(items) != len(batch):
                raise ModelOutputError(f"embeddings {self.model}: expected {len(batch)} embeddings")
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
            rows.extend(item["embedding"] for item in ordered)
            usage = data.get("usage")
            tokens += int(usage.get("prompt_tokens", 0)) if isinstance(usage, dict) else 0
        if not rows:
            return Embedded(np.zeros((0, 0), dtype=np.float32), 0)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        return Embedded(normalised.astype(np.float32), tokens)


_loaded: Embedder | None = None


def load_embedder(settings: Settings) -> Embedder:
    """Build the configured embedder and log it once: the log line is how a load is counted."""
    embedder: Embedder = EndpointEmbedder(settings) if settings.embeddings_base_url else HashingProvider()
    logger.info("embedder loaded name=%s pid=%d", embedder.name, os.getpid())
    return embedder


def get_embedder(settings: Settings) -> Embedder:
    """This process's embedder: the one preloaded in the worker parent, else built now (once)."""
    global _loaded
    if _loaded is None:
        _loaded = load_embedder(settings)
    return _loaded
