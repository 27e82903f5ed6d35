"""Embeddings are model calls like any other, on real processes against a fake provider that serves
/v1/embeddings: estimated at enqueue, priced, recorded on the job and in the ledger, limited by the
embeddings rate limits and refused by the budgets, for vectorize_documents and a search's query alike."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
from redis import Redis

from feynman_jobs.costs import ledger
from feynman_jobs.costs.estimate import MEMORY_DOCUMENT_TOKENS
from feynman_jobs.text.chunk import chunked_tokens
from feynman_jobs.text.tokens import count_tokens
from tests.chat_server import EMBEDDING_TOKENS_PER_INPUT, FakeProvider
from tests.support import enqueue, http, start_web, start_worker, wait_for

#: $1,000 per million input tokens: one embedded token costs $0.001, so figures are easy to check.
PRICE_PER_TOKEN = 0.001
DOCUMENTS = [
    {"id": "zh", "text": "光合作用是植物利用光能，把二氧化碳和水合成葡萄糖并放出氧气的过程。"},
    {"id": "en", "text": "Mitochondria turn glucose and oxygen into ATP, the cell's energy currency."},
]


def _ledger(redis: Redis) -> list[dict[str, str]]:
    entries: list[tuple[bytes, dict[bytes, bytes]]] = redis.xrange("feynman:ledger")  # type: ignore[assignment]
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in entries]


def test_embeddings_are_estimated_priced_recorded_limited_and_budgeted(
    redis_url: str, redis: Redis, tmp_path: Path, provider: FakeProvider
) -> None:
    env = {
        "FEYNMAN_EMBEDDINGS_BASE_URL": provider.url,
        "FEYNMAN_EMBEDDINGS_MODEL": "embed-test",
        "FEYNMAN_PRICES": json.dumps({"embed-test": {"input_per_mtok": 1000, "output_per_mtok": 0}}),
        "FEYNMAN_BUDGET_DAILY_USD": "1.0",
        "FEYNMAN_EMBEDDINGS_RPM": "3",
    }
    web, base = start_web(redis_url, tmp_path / "web.log", env)
    worker = start_worker(redis_url, tmp_path / "worker.log", redis, env)
    try:
        body = {"type": "vectorize_documents", "payload": {"namespace": "docs", "documents": DOCUMENTS}}
        code, _, estimate = http("POST", base + "/api/estimate", body)
        assert code == 200
        [job_estimate] = estimate["jobs"]
        tokens = sum(chunked_tokens(count_tokens(doc["text"])) for doc in DOCUMENTS)
        assert (job_estimate["model"], job_estimate["tokens_in"]) == ("embed-test", tokens)
        assert estimate["usd"] == pytest.approx(tokens * PRICE_PER_TOKEN)
        # consolidate_memory's follow-up embeds the memory it writes: estimated at the record's bound.
        conversation = [{"role": "user", "content": "植物用光合作用制造葡萄糖。"}]
        payload = {"topic": "光合作用", "learner_id": "l1", "conversation": conversation}
        consolidation = {"type": "consolidate_memory", "payload": payload}
        follow_up = http("POST", base + "/api/estimate", consolidation)[2]["jobs"][1]
        assert (follow_up["type"], follow_up["model"]) == ("vectorize_documents", "embed-test")
        assert follow_up["usd"] == pytest.approx(chunked_tokens(MEMORY_DOCUMENT_TOKENS) * PRICE_PER_TOKEN)

        done = wait_for(base, enqueue(base, body)["id"])
        billed = EMBEDDING_TOKENS_PER_INPUT * sum(provider.embedding_inputs)
        # Both documents in one request (the embedder batches a job's chunks): one of the three RPM.
        assert provider.embedding_inputs == [2]
        assert done["cost"]["tokens_in"] == billed
        assert done["cost"]["usd"] == pytest.approx(billed * PRICE_PER_TOKEN)
        entries = _ledger(redis)
        assert [(e["model"], e["job_type"], e["job_id"]) for e in entries] == [
            ("embed-test", "vectorize_documents", done["id"])
        ]

        query = urllib.parse.urlencode({"q": "光合作用 葡萄糖", "namespace": "docs"})
        code, _, found = http("GET", f"{base}/api/memories/search?{query}")
        assert code == 200, found
        assert found["hits"][0]["doc_id"] == "zh"
        search_entry = _ledger(redis)[-1]
        assert (search_entry["model"], search_entry["job_type"], search_entry["job_id"]) == (
            "embed-test",
            "search",
            "",
        )
        assert int(search_entry["usd_micros"]) == EMBEDDING_TOKENS_PER_INPUT * 1000
        daily = http("GET", base + "/api/budget")[2]["budgets"][0]
        assert daily["spent_usd"] == pytest.approx((billed + EMBEDDING_TOKENS_PER_INPUT) * PRICE_PER_TOKEN)

        assert http("GET", f"{base}/api/memories/search?{query}")[0] == 200  # the third request of the minute
        # The minute's three embeddings requests are used: the next search waits briefly, then a 429.
        code, headers, problem = http("GET", f"{base}/api/memories/search?{query}")
        assert (code, problem["type"]) == (429, "urn:feynman-jobs:problem:rate-limited")
        assert 1 <= int(headers["Retry-After"]) <= 63
        assert len(provider.embedding_inputs) == 3
        # A vectorize_documents job meeting the same limit is held (scheduled, not failed), sending nothing.
        held = wait_for(base, enqueue(base, body)["id"], ("scheduled",))
        assert held["held"]["reason"].startswith("embeddings rate limit reached (RPM 3)")
        assert (held["error"], held["retries_left"]) == (None, held["max_retries"])
        assert len(provider.embedding_inputs) == 3

        # Someone else spends the rest of the day's dollar: a search and a vectorize are both refused.
        redis.delete(*redis.keys("feynman:ratelimit*embeddings*"))
        ledger.record_call(
            redis, model="x", tokens_in=1, tokens_out=0, usd_micros=900_000, job_id="x", job_type="elsewhere"
        )
        code, _, problem = http("GET", f"{base}/api/memories/search?{query}")
        assert (code, problem["type"], problem["budget"]) == (
            429,
            "urn:feynman-jobs:problem:budget-exceeded",
            "daily",
        )
        jobs_before = len(redis.keys("rq:job:*"))
        code, _, problem = http("POST", base + "/api/jobs", body)
        assert (code, problem["type"]) == (429, "urn:feynman-jobs:problem:budget-exceeded")
        assert problem["needed_usd"] == pytest.approx(tokens * PRICE_PER_TOKEN)
        assert len(redis.keys("rq:job:*")) == jobs_before
        assert len(provider.embedding_inputs) == 3  # nothing refused reached the provider
    finally:
        worker.stop()
        web.stop()
