"""The Redis vector store on a real redis-server: replacement, concurrent writers, compaction, caching."""

from __future__ import annotations

import threading
from collections import Counter

import numpy as np
import pytest
from numpy.typing import NDArray
from redis import Redis

from feynman_jobs.errors import VectorSpaceMismatch
from feynman_jobs.memory import vector_lua
from feynman_jobs.memory.vectors import Document, RedisVectorStore
from feynman_jobs.text.embed import HashingEmbedder

EMBEDDER = HashingEmbedder()
MODEL = EMBEDDER.name


def _embed(texts: list[str]) -> NDArray[np.float32]:
    return EMBEDDER.embed(texts)


def _rows(redis: Redis, namespace: str) -> int:
    matrix_key = RedisVectorStore.keys(namespace)[0]
    return int(redis.strlen(matrix_key)) // (4 * EMBEDDER.dim)


def test_a_document_is_found_by_its_own_words_and_replaced_not_appended(redis: Redis) -> None:
    store = RedisVectorStore(redis)
    chunks = ["叶绿素吸收红光和蓝光，反射绿光。", "光反应在类囊体膜上进行，产生ATP和NADPH。"]
    store.upsert("bio", "photo", chunks, _embed(chunks), {"lang": "zh"}, model=MODEL)
    other = ["TCP halves its congestion window on packet loss."]
    store.upsert("bio", "tcp", other, _embed(other), model=MODEL)

    [hit] = store.search("bio", _embed(["类囊体膜"])[0], 1, model=MODEL)
    assert (hit.doc_id, hit.chunk, hit.text, hit.metadata) == ("photo", 1, chunks[1], {"lang": "zh"})
    assert 0 < hit.score <= 1.0001

    store.upsert("bio", "photo", ["暗反应固定二氧化碳。"], _embed(["暗反应固定二氧化碳。"]), model=MODEL)
    assert store.chunk_count("bio", "photo") == 1
    assert store.chunk_count("bio") == 2
    hits = store.search("bio", _embed(["类囊体膜"])[0], 5, model=MODEL)
    assert [h.text for h in hits if h.doc_id == "photo"] == ["暗反应固定二氧化碳。"]

    store.delete("bio", "photo")
    assert [h.doc_id for h in store.search("bio", _embed(["暗反应"])[0], 5, model=MODEL)] == ["tcp"]


def test_a_reader_cache_follows_writes_from_other_clients(redis: Redis, redis_url: str) -> None:
    reader, writer = RedisVectorStore(redis), RedisVectorStore(Redis.from_url(redis_url))
    writer.upsert(
        "ns", "a", ["梯度下降沿负梯度方向更新参数"], _embed(["梯度下降沿负梯度方向更新参数"]), model=MODEL
    )
    assert [h.doc_id for h in reader.search("ns", _embed(["学习率"])[0], 5, model=MODEL)] == ["a"]
    writer.upsert("ns", "b", ["学习率太大会发散"], _embed(["学习率太大会发散"]), model=MODEL)
    assert reader.search("ns", _embed(["学习率"])[0], 1, model=MODEL)[0].doc_id == "b"
    # A namespace deleted and rebuilt (same version number) is not mistaken for the cached one.
    redis.delete(*RedisVectorStore.keys("ns"))
    writer.upsert("ns", "c", ["动量法"], _embed(["动量法"]), model=MODEL)
    assert [h.doc_id for h in reader.search("ns", _embed(["动量法"])[0], 5, model=MODEL)] == ["c"]


def test_concurrent_writers_lose_no_vector(redis: Redis, redis_url: str) -> None:
    writers, per_writer = 8, 25
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        store = RedisVectorStore(Redis.from_url(redis_url))
        try:
            for n in range(per_writer):
                chunks = [f"note w{writer}d{n}p{part} 第{part}段" for part in range(3)]
                store.upsert("shared", f"w{writer}-d{n}", chunks, _embed(chunks), model=MODEL)
                # Everyone also rewrites one common document: last writer wins, whole.
                common = [f"common from writer {writer} round {n}"] * (1 + writer % 3)
                store.upsert("shared", "common", common, _embed(common), model=MODEL)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    store = RedisVectorStore(redis)
    common_chunks = store.chunk_count("shared", "common")
    assert common_chunks in (1, 2, 3)
    assert store.chunk_count("shared") == writers * per_writer * 3 + common_chunks
    for writer in range(writers):
        for n in range(per_writer):
            query = f"note w{writer}d{n}p1 第1段"
            hit = store.search("shared", _embed([query])[0], 1, model=MODEL)[0]
            assert (hit.doc_id, hit.chunk, hit.text) == (f"w{writer}-d{n}", 1, query)
            assert hit.score == pytest.approx(1.0, abs=1e-4)


def test_replaced_rows_are_compacted_away(redis: Redis) -> None:
    store = RedisVectorStore(redis)
    rounds = vector_lua.COMPACT_MIN_GARBAGE + 10
    for n in range(rounds):
        chunks = [f"round{n} alpha", f"round{n} beta"]
        store.upsert("c", "doc", chunks, _embed(chunks), model=MODEL)
    assert store.chunk_count("c") == 2
    assert _rows(redis, "c") <= 2 + vector_lua.COMPACT_MIN_GARBAGE + 2
    hits = store.search("c", _embed([f"round{rounds - 1} beta"])[0], 2, model=MODEL)
    assert [h.text for h in hits] == [f"round{rounds - 1} beta", f"round{rounds - 1} alpha"]


def test_another_embedder_cannot_write_or_search_a_namespace(redis: Redis) -> None:
    store = RedisVectorStore(redis)
    store.upsert("m", "doc", ["光合作用"], _embed(["光合作用"]), model=MODEL)
    other = HashingEmbedder(dim=64)
    with pytest.raises(VectorSpaceMismatch, match="re-vectorize"):
        store.upsert("m", "doc2", ["x"], other.embed(["x"]), model=other.name)
    with pytest.raises(VectorSpaceMismatch, match=MODEL):
        store.search("m", other.embed(["x"])[0], 3, model=other.name)
    assert store.chunk_count("m") == 1


def _calls(redis: Redis) -> Counter[str]:
    """Commands served so far by name (INFO commandstats; failed ones counted apart)."""
    stats = redis.info("commandstats")
    return Counter({key[len("cmdstat_") :]: int(value["calls"]) for key, value in stats.items()})


def test_many_documents_are_upserted_in_one_round_trip_each_replaced_whole(redis: Redis) -> None:
    store = RedisVectorStore(redis)
    first = ["光合作用把光能变成化学能。", "叶绿体是光合作用的场所。"]
    store.upsert("many", "photo", first, _embed(first), model=MODEL)
    replaced, other = ["暗反应固定二氧化碳。"], ["TCP halves its window on loss.", "UDP has no window."]
    documents = [
        Document("photo", replaced, _embed(replaced)),
        Document("net", other, _embed(other), {"lang": "en"}),
    ]
    redis.script_flush()  # a new master, or a flushed cache: the pipeline's EVALSHA finds no script
    before = _calls(redis)
    stored = store.upsert_many("many", documents, model=MODEL)
    assert stored == 3
    sent = _calls(redis) - before
    assert sent["script|exists"] == 0  # no SCRIPT EXISTS round trip before the pipeline
    # Both EVALSHAs refused (NOSCRIPT), the script loaded once, both sent again.
    assert (sent["evalsha"], sent["script|load"]) == (4, 1)
    assert (store.chunk_count("many", "photo"), store.chunk_count("many", "net")) == (1, 2)
    [hit] = store.search("many", _embed(["window on loss"])[0], 1, model=MODEL)
    assert (hit.doc_id, hit.text, hit.metadata) == ("net", other[0], {"lang": "en"})
    # A document with no chunks left is removed, as upsert does.
    emptied = Document("net", [], np.zeros((0, EMBEDDER.dim), np.float32))
    assert store.upsert_many("many", [emptied], model=MODEL) == 0
    assert store.chunk_count("many") == 1
    with pytest.raises(VectorSpaceMismatch):
        store.upsert_many("many", [Document("x", ["x"], np.ones((1, 8), np.float32))], model="other-model")
