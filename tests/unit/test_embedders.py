"""Embedders chosen by settings: offline hashing by default, an /embeddings endpoint in batches."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feynman_jobs.costs import ledger
from feynman_jobs.errors import RetryableJobError
from feynman_jobs.providers.chat import CallGuard, CallKind
from feynman_jobs.providers.embedders import EndpointEmbedder, HashingProvider, load_embedder
from feynman_jobs.settings import Price, load_settings
from feynman_jobs.text.tokens import count_tokens


def _vectors(request: Request) -> Response:
    """Embeddings whose first component is the text's length, answered in reverse order."""
    body = json.loads(request.get_data())
    data = [
        {"object": "embedding", "index": i, "embedding": [float(len(text)), 1.0, 0.0]}
        for i, text in enumerate(body["input"])
    ]
    usage = {"prompt_tokens": 10 * len(body["input"]), "total_tokens": 10 * len(body["input"])}
    answer = {"object": "list", "model": body["model"], "data": data[::-1], "usage": usage}
    return Response(json.dumps(answer), content_type="application/json")


def _guard_into(calls: list[tuple[str, int, bool, str]]) -> CallGuard:
    def guard(
        model: str, tokens_in: int, tokens_out: int, *, remote: bool, kind: CallKind = "chat"
    ) -> AbstractContextManager[None]:
        calls.append((model, tokens_in, remote, kind))
        return nullcontext()

    return guard


def test_the_default_is_the_offline_hashing_embedder() -> None:
    embedder = load_embedder(load_settings())
    assert isinstance(embedder, HashingProvider)
    guarded: list[tuple[str, int, bool, str]] = []
    recorded: list[tuple[str, int, int]] = []
    embedded = embedder.embed(
        ["光合作用", "photosynthesis"], guard=_guard_into(guarded), record=lambda *call: recorded.append(call)
    )
    assert embedded.vectors.shape == (2, 384)
    tokens = count_tokens("光合作用") + count_tokens("photosynthesis")
    assert embedded.tokens == tokens > 0
    # A local model call like the offline LLM's: guarded (never rate-limited), recorded at its estimate, free.
    assert guarded == [("hashing-v1-384", tokens, False, "embeddings")]
    assert recorded == [("hashing-v1-384", tokens, 0)]
    assert ledger.price_of({}, "hashing-v1-384") == Price(input_per_mtok=0, output_per_mtok=0)
    assert ledger.price_of({}, "text-embedding-3-small") is None


def test_an_endpoint_is_called_in_batches_and_rows_come_back_in_order(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(_vectors)
    settings = load_settings(
        embeddings_base_url=httpserver.url_for("/v1"), embeddings_model="embed-test", embeddings_batch=2
    )
    embedder = load_embedder(settings)
    assert isinstance(embedder, EndpointEmbedder)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    guarded: list[tuple[str, int, bool, str]] = []
    recorded: list[tuple[str, int, int]] = []
    embedded = embedder.embed(texts, guard=_guard_into(guarded), record=lambda *call: recorded.append(call))
    assert [len(json.loads(request.get_data())["input"]) for request, _ in httpserver.log] == [2, 2, 1]
    assert embedded.tokens == 50
    # Every request is its own guarded call, estimated before it and recorded with the billed usage.
    estimates = [sum(count_tokens(text) for text in texts[i : i + 2]) for i in (0, 2, 4)]
    assert guarded == [("embed-test", estimate, True, "embeddings") for estimate in estimates]
    assert recorded == [("embed-test", 20, 0), ("embed-test", 20, 0), ("embed-test", 10, 0)]
    assert np.allclose(np.linalg.norm(embedded.vectors, axis=1), 1.0)
    lengths = embedded.vectors[:, 0] / embedded.vectors[:, 1]  # undo the normalisation
    assert np.allclose(lengths, [1, 2, 3, 4, 5])
    assert embedder.name == "embed-test"


def test_an_overloaded_endpoint_is_retryable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_data("overloaded", status=503)
    embedder = load_embedder(load_settings(embeddings_base_url=httpserver.url_for("/v1")))
    with pytest.raises(RetryableJobError, match="HTTP 503"):
        embedder.embed(["光合作用"])
