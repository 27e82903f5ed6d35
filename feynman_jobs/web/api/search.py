"""`GET /api/memories/search`: similarity search over what vectorize_documents stored."""

from __future__ import annotations

from typing import Any

from flask import current_app

from feynman_jobs.costs.reservations import request_meter
from feynman_jobs.memory import search
from feynman_jobs.memory.search import SearchQuery, SearchResults
from feynman_jobs.memory.vectors import RedisVectorStore
from feynman_jobs.providers.embedders import get_embedder
from feynman_jobs.web.access import clients
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import QUERY_PROBLEM, documented
from feynman_jobs.web.parsing import parse_query

bp = api_blueprint("feynman_search", __name__)

#: Where the app keeps its vector store, whose matrix cache outlives a request.
STORE_KEY = "feynman_jobs.vector_store"
#: The job type a search's query embedding is recorded under in the cost ledger.
SEARCH_LEDGER_TYPE = "search"


def _store() -> RedisVectorStore:
    store = current_app.extensions.get(STORE_KEY)
    if not isinstance(store, RedisVectorStore):
        store = current_app.extensions[STORE_KEY] = RedisVectorStore(extension().redis)
    return store


@bp.get("/memories/search")
@documented(
    query=SearchQuery,
    responses={200: SearchResults},
    problems={
        **QUERY_PROBLEM,
        409: "`vector-space-mismatch`: the namespace was indexed with another embedder",
        429: "`budget-exceeded`: the query embedding would pass a budget; `rate-limited`: the "
        "embeddings rate limit is reached (`Retry-After`)",
    },
)
@clients
def search_memories() -> dict[str, Any]:
    """The k chunks most similar to q: a learner's memories and the shared namespaces named, best first."""
    query = parse_query(SearchQuery)
    # Built once per web process, like the worker's; the same vector space the jobs wrote with.
    ext = extension()
    embedder = get_embedder(ext.settings)
    # The query embedding is a model call: budgets, the embeddings rate limits, the ledger.
    guard, record = request_meter(ext.redis, ext.settings, SEARCH_LEDGER_TYPE)
    return search.search(_store(), embedder, query, guard=guard, record=record).model_dump(mode="json")
