"""The embedder provider: offline feature hashing by default, or an OpenAI-compatible /embeddings endpoint.

One embedder per process: the worker parent builds it (worker_config) so every forked work horse
inherits it instead of loading its own.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import httpx
import numpy as np
from numpy.typing import NDArray

from feynman_jobs.errors import ModelOutputError
from feynman_jobs.providers.chat import CallGuard, UsageRecorder, no_guard
from feynman_jobs.providers.http import client, post_json, with_inline_retry
from feynman_jobs.settings import Settings
from feynman_jobs.text.embed import HashingEmbedder
from feynman_jobs.text.tokens import count_tokens

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Embedded:
    """L2-normalised float32 rows, one per text, and the tokens the endpoint billed (0 offline)."""

    vectors: NDArray[np.float32]
    tokens: int


class Embedder(Protocol):
    """Texts to normalised vectors; `name` identifies the vector space (stored with the vectors).

    Every call is a model call like a chat completion: `guard` wraps each request (budgets and the
    embeddings rate limits) and `record` puts its tokens in the ledger inside the guard.
    """

    name: str
    remote: bool

    def embed(
        self, texts: list[str], *, guard: CallGuard = no_guard, record: UsageRecorder | None = None
    ) -> Embedded:
        """Embed the texts, in batches where that matters."""
        ...


def _nothing(model: str, tokens_in: int, tokens_out: int) -> None:
    """Record nothing (outside a job and a metered request)."""


class HashingProvider:
    """HashingEmbedder: no download, Chinese by character bigrams, thousands of chunks a second."""

    remote = False

    def __init__(self) -> None:
        self._model = HashingEmbedder()
        self.name = self._model.name

    def embed(
        self, texts: list[str], *, guard: CallGuard = no_guard, record: UsageRecorder | None = None
    ) -> Embedded:
        """Hash the texts' terms into vectors; the tokens are the local estimate (priced 0 unless listed)."""
        tokens = sum(count_tokens(text) for text in texts)
        with guard(self.name, tokens, 0, remote=False, kind="embeddings"):
            vectors = self._model.embed(texts)
            (record or _nothing)(self.name, tokens, 0)
        return Embedded(vectors, tokens)


class EndpointEmbedder:
    """An OpenAI-compatible POST /embeddings endpoint, `batch` texts per request."""

    remote = True

    def __init__(self, settings: Settings) -> None:
        assert settings.embeddings_base_url is not None
        self.model = settings.embeddings_model
        self.name = settings.embeddings_model
        self.batch = settings.embeddings_batch
        self._http: httpx.Client = client(
            settings.embeddings_base_url, settings.embeddings_api_key, settings.llm_timeout_s
        )

    def embed(
        self, texts: list[str], *, guard: CallGuard = no_guard, record: UsageRecorder | None = None
    ) -> Embedded:
        """Embed in batches, each request guarded and recorded; rows come back normalised (cosine is a
        dot product in the store). The endpoint's `usage` is what is billed (the estimate if it has none)."""
        rows: list[list[float]] = []
        tokens = 0
        what = f"embeddings {self.model}"
        for start in range(0, len(texts), self.batch):
            batch = texts[start : start + self.batch]
            body = {"model": self.model, "input": batch}
            estimate = sum(count_tokens(text) for text in batch)
            # A short Retry-After is waited out once; the second try passes the guard again.
            once = partial(self._request, body, estimate, guard, record or _nothing)
            data, used = with_inline_retry(once, what=what)
            tokens += used
            items = data.get("data")
            if not isinstance(items, list) or len(items) != len(batch):
                raise ModelOutputError(f"embeddings {self.model}: expected {len(batch)} embeddings")
            ordered = sorted(items, key=lambda item: int(item.get("index", 0)))
            rows.extend(item["embedding"] for item in ordered)
        if not rows:
            return Embedded(np.zeros((0, 0), dtype=np.float32), 0)
        matrix = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        normalised = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        return Embedded(normalised.astype(np.float32), tokens)

    def _request(
        self, body: dict[str, Any], estimate: int, guard: CallGuard, record: UsageRecorder
    ) -> tuple[dict[str, Any], int]:
        """One guarded request; its usage is recorded inside the guard, so spend counts before the
        reservation goes back."""
        with guard(self.model, estimate, 0, remote=True, kind="embeddings"):
            data = post_json(self._http, "embeddings", body, what=f"embeddings {self.model}")
            usage = data.get("usage")
            used = int(usage.get("prompt_tokens", estimate)) if isinstance(usage, dict) else estimate
            record(self.model, used, 0)
        return data, used


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
