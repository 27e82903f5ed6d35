"""Embedders chosen by settings: offline hashing by default, an /embeddings endpoint in batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from feynman_jobs.errors import RetryableJobError
from feynman_jobs.providers.embedders import EndpointEmbedder, HashingProvider, load_embedder
from feynman_jobs.settings import load_settings


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


def test_the_default_is_the_offline_hashing_embedder() -> None:
    embedder = load_embedder(load_settings())
    assert isinstance(embedder, HashingProvider)
    embedded = embedder.embed(["光合作用", "photosynthesis"])
    assert embedded.vectors.shape == (2, 384)
    assert embedded.tokens == 0


def test_an_endpoint_is_called_in_batches_and_rows_come_back_in_order(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(_vectors)
    settings = load_settings(
        embeddings_base_url=httpserver.url_for("/v1"), embeddings_model="embed-test", embeddings_batch=2
    )
    embedder = load_embedder(settings)
    assert isinstance(embedder, EndpointEmbedder)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]
    embedded = embedder.embed(texts)
    assert [len(json.loads(request.get_data())["input"]) for request, _ in httpserver.log] == [2, 2, 1]
    assert embedded.tokens == 50
    assert np.allclose(np.linalg.norm(embedded.vectors, axis=1), 1.0)
    lengths = embedded.vectors[:, 0] / embedded.vectors[:, 1]  # undo the normalisation
    assert np.allclose(lengths, [1, 2, 3, 4, 5])
    assert embedder.name == "embed-test"


def test_an_overloaded_endpoint_is_retryable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_data("overloaded", status=503)
    embedder = load_embedder(load_settings(embeddings_base_url=httpserver.url_for("/v1")))
    with pytest.raises(RetryableJobError, match="HTTP 503"):
        embedder.embed(["光合作用"])
