"""`GET /api/memories/search`: parameters validated into problem documents, auth, hits as stored."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from feynman_jobs.keys import memory_namespace
from feynman_jobs.memory.vectors import RedisVectorStore
from feynman_jobs.providers.embedders import HashingProvider
from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app
from tests.support import free_port

URL = "/api/memories/search"


@pytest.fixture
def client(redis_url: str, redis: Redis) -> FlaskClient:
    return create_app(load_settings(redis_url=redis_url)).test_client()


def _index(redis: Redis, namespace: str, doc_id: str, chunks: list[str], **metadata: Any) -> None:
    embedder = HashingProvider()
    RedisVectorStore(redis).upsert(
        namespace, doc_id, chunks, embedder.embed(chunks).vectors, metadata, model=embedder.name
    )


def test_hits_carry_document_chunk_score_text_and_metadata(client: FlaskClient, redis: Redis) -> None:
    mine = memory_namespace("l-1")
    _index(redis, mine, "m-1", ["光合作用把光能转化为化学能。", "叶绿素吸收红光和蓝光。"], learner_id="l-1")
    _index(redis, mine, "m-2", ["TCP slow start doubles the window every round trip."])
    _index(redis, "course-9", "d-1", ["叶绿素吸收红光和蓝光。"])
    response = client.get(URL, query_string={"q": "叶绿素吸收什么光", "k": 2, "learner_id": "l-1"})
    assert response.status_code == 200
    body = response.get_json()
    assert (body["learner_id"], body["namespaces"]) == ("l-1", [])
    assert (body["k"], body["embedder"]) == (2, HashingProvider().name)
    first = body["hits"][0]
    assert (first["namespace"], first["doc_id"], first["chunk"]) == ("memories", "m-1", 1)
    assert first["text"] == "叶绿素吸收红光和蓝光。"
    assert first["metadata"] == {"learner_id": "l-1"}
    assert 0 < first["score"] <= 1.0001
    assert len(body["hits"]) == 2
    assert body["hits"][0]["score"] >= body["hits"][1]["score"]
    other = client.get(URL, query_string={"q": "叶绿素", "namespace": "course-9"}).get_json()
    assert [(hit["namespace"], hit["doc_id"]) for hit in other["hits"]] == [("course-9", "d-1")]
    both = client.get(URL, query_string={"q": "叶绿素吸收", "learner_id": "l-1", "namespace": "course-9"})
    assert {hit["namespace"] for hit in both.get_json()["hits"]} == {"memories", "course-9"}
    empty = client.get(URL, query_string={"q": "叶绿素", "namespace": "nothing-here"}).get_json()
    assert empty["hits"] == []
    stranger = client.get(URL, query_string={"q": "叶绿素", "learner_id": "l-2"}).get_json()
    assert stranger["hits"] == []


@pytest.mark.parametrize(
    ("query", "pointer"),
    [
        ("learner_id=l-1", "#/query/q"),
        ("q=&learner_id=l-1", "#/query/q"),
        ("q=x", "#/query"),
        ("q=x&namespace=memories", "#/query/namespace"),
        ("q=x&namespace=course,memories.0123", "#/query/namespace"),
        ("q=x&namespace=a,b,c,d,e,f", "#/query/namespace"),
        ("q=" + "长" * 2001 + "&namespace=n", "#/query/q"),
        ("q=x&k=0&namespace=n", "#/query/k"),
        ("q=x&k=51&namespace=n", "#/query/k"),
        ("q=x&k=five&namespace=n", "#/query/k"),
        ("q=x&namespace=a%20b", "#/query/namespace"),
        ("q=x&namespace=%7Bx%7D", "#/query/namespace"),
        ("q=x&limit=3&namespace=n", "#/query/limit"),
        ("q=x&q=y", "#/query/q"),
    ],
)
def test_bad_parameters_get_a_problem_naming_them(client: FlaskClient, query: str, pointer: str) -> None:
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["type"] == "urn:feynman-jobs:problem:invalid-request"
    assert pointer in [error["pointer"] for error in body["errors"]]


def test_a_token_is_required_when_configured(redis_url: str, redis: Redis) -> None:
    token = "search-t0ken-0123456789"
    client = create_app(load_settings(redis_url=redis_url, api_tokens=token)).test_client()
    assert client.get(URL, query_string={"q": "x", "namespace": "n"}).status_code == 401
    ok = client.get(
        URL, query_string={"q": "x", "namespace": "n"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert ok.status_code == 200


def test_redis_down_is_a_503_problem() -> None:
    client = create_app(load_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")).test_client()
    response = client.get(URL, query_string={"q": "光合作用", "learner_id": "l-1"})
    assert response.status_code == 503
    assert response.get_json()["type"] == "urn:feynman-jobs:problem:redis-unavailable"
