"""Chunking with overlap, and the hashing embedder's determinism, normalisation and retrieval quality."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys

import numpy as np
import pytest
from numpy.typing import NDArray

from feynman_jobs.text.chunk import chunk_text
from feynman_jobs.text.embed import HashingEmbedder
from feynman_jobs.text.tokens import count_tokens
from tests.samples import GRADIENT_DESCENT_MIXED, PHOTOSYNTHESIS_ZH, TCP_CONGESTION_EN, Conversation


def _document(conversation: Conversation, copies: int = 2) -> str:
    return "\n".join(m["content"] for m in conversation) * copies


def _shared_edge(first: str, second: str) -> str:
    """The longest tail of first that starts second."""
    for size in range(min(len(first), len(second)), 0, -1):
        if second.startswith(first[-size:]):
            return first[-size:]
    return ""


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("conversation", [PHOTOSYNTHESIS_ZH, TCP_CONGESTION_EN, GRADIENT_DESCENT_MIXED])
def test_chunks_are_bounded_overlapping_and_cover_everything(conversation: Conversation) -> None:
    text = _document(conversation)
    chunks = chunk_text(text, max_tokens=60, overlap_tokens=15)
    assert len(chunks) >= 4
    assert all(0 < count_tokens(chunk) <= 60 for chunk in chunks)
    for first, second in itertools.pairwise(chunks):
        shared = _shared_edge(first, second)
        assert shared
        assert count_tokens(shared) <= 15
    # Every character is in some chunk: stitching the chunks minus their overlaps rebuilds the text.
    stitched = chunks[0] + "".join(b[len(_shared_edge(a, b)) :] for a, b in itertools.pairwise(chunks))
    assert _squash(stitched) == _squash(text)


def test_chunks_prefer_sentence_boundaries() -> None:
    text = _document(PHOTOSYNTHESIS_ZH)
    chunks = chunk_text(text, max_tokens=120, overlap_tokens=30)
    assert all(chunk.endswith(("。", "？", "！", "…")) for chunk in chunks[:-1])


def test_long_sentences_are_split_by_characters_and_words() -> None:
    chinese = "叶绿素吸收红光和蓝光并反射绿光" * 20  # 300 characters, no punctuation at all
    chunks = chunk_text(chinese, max_tokens=50, overlap_tokens=10)
    assert all(count_tokens(c) <= 50 for c in chunks)
    assert len(chunks) >= 7
    english = " ".join(["congestion"] * 200)
    chunks = chunk_text(english, max_tokens=30, overlap_tokens=5)
    assert all(count_tokens(c) <= 30 for c in chunks)
    assert all(set(c.split()) == {"congestion"} for c in chunks)  # never a word cut in half
    blob = "x" * 5000  # one "word" far over the bound is cut into letter slices
    chunks = chunk_text(blob, max_tokens=50, overlap_tokens=10)
    assert all(count_tokens(c) <= 50 for c in chunks)
    assert "".join(chunks) == blob  # slices heavier than the overlap are not repeated


def test_chunk_edges() -> None:
    assert chunk_text("") == []
    assert chunk_text("  \n ") == []
    assert chunk_text("短文本。") == ["短文本。"]
    with pytest.raises(ValueError, match="overlap"):
        chunk_text("text", max_tokens=40, overlap_tokens=40)
    assert chunk_text("One. Two. Three.", max_tokens=3, overlap_tokens=0) == ["One.", "Two.", "Three."]


def test_embedder_is_deterministic_and_normalised() -> None:
    model = HashingEmbedder()
    assert model.dim == 384
    assert model.name == "hashing-v1-384"
    texts = [
        "光合作用发生在叶绿体里。",
        "TCP halves its congestion window on loss.",
        "光合作用发生在叶绿体里。",
        "。。。",
    ]
    vectors = model.embed(texts)
    assert vectors.shape == (4, 384)
    assert vectors.dtype == np.float32
    assert np.array_equal(vectors[0], vectors[2])
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # no terms: a zero row
    assert np.array_equal(HashingEmbedder().embed(texts[:1]), vectors[:1])
    assert model.embed([]).shape == (0, 384)


def test_embedding_is_the_same_in_another_process() -> None:
    code = (
        "from feynman_jobs.text.embed import HashingEmbedder;"
        "print(HashingEmbedder(64).embed(['叶绿素 chlorophyll absorbs light'])[0].tolist())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = HashingEmbedder(64).embed(["叶绿素 chlorophyll absorbs light"])[0].tolist()
    assert other.stdout.strip() == str(here)


def _ranked(matrix: NDArray[np.float32], query: NDArray[np.float32]) -> list[tuple[int, float]]:
    """Rows by cosine to the query, best first (rows and query are normalised by the embedder)."""
    scores = matrix.astype(np.float64) @ query.astype(np.float64)
    return [(int(i), float(scores[i])) for i in np.argsort(-scores, kind="stable")]


def test_chinese_query_finds_its_document() -> None:
    documents = [
        "光合作用是植物利用光能，把二氧化碳和水转化成葡萄糖和氧气的过程，主要在叶绿体中进行。",
        "细胞呼吸在线粒体中进行，把葡萄糖分解成二氧化碳和水，同时释放能量，合成ATP。",
        "牛顿第一定律说，物体在不受外力时保持静止或匀速直线运动，这叫做惯性。",
    ]
    model = HashingEmbedder()
    matrix = model.embed(documents)
    for query, expected in (("叶绿体中的光合作用", 0), ("线粒体 细胞呼吸", 1), ("惯性和外力", 2)):
        ranking = _ranked(matrix, model.embed([query])[0])
        assert ranking[0][0] == expected
        assert ranking[0][1] > ranking[1][1]


def test_english_query_finds_its_document_and_matches_word_forms() -> None:
    documents = [
        "TCP congestion control halves the congestion window when a packet is lost.",
        "Gradient descent updates the parameters against the gradient of the loss function.",
        "Photosynthesis turns light energy into chemical energy inside chloroplasts.",
    ]
    model = HashingEmbedder()
    matrix = model.embed(documents)
    for query, expected in (
        ("congestion windows", 0),
        ("updating parameters with gradients", 1),
        ("chloroplast", 2),
    ):
        ranking = _ranked(matrix, model.embed([query])[0])[:2]
        assert ranking[0][0] == expected
        assert len(ranking) == 2
