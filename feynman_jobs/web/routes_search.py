"""`GET /api/memories/search`: similarity search over what vectorize_documents stored."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from feynman_jobs.memory.records import MEMORY_NAMESPACE
from feynman_jobs.memory.vectors import RedisVectorStore, VectorSpaceMismatch
from feynman_jobs.providers.embedders import get_embedder
from feynman_jobs.queueing.requests import SearchHit, SearchQuery, SearchResults, parse_search_query
from feynman_jobs.web.auth import require_token
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import QUERY_PROBLEM, documented
from feynman_jobs.web.problems import problem, register_handlers

bp = Blueprint("feynman_search", __name__, url_prefix="/api")
register_handlers(bp)

#: Where the app keeps its vector store, whose matrix cache outlives a request.
STORE_KEY = "feynman_jobs.vector_store"


@bp.before_request
def _authenticate() -> Response | None:
    return require_token(extension().settings)


def _store() -> RedisVectorStore:
    store = current_app.extensions.get(STORE_KEY)
    if not isinstance(store, RedisVectorStore):
        store = current_app.extensions[STORE_KEY] = RedisVectorStore(extension().redis)
    return store


@bp.errorhandler(VectorSpaceMismatch)
def _mismatch(error: VectorSpaceMismatch) -> Response:
    return problem(409, "vector-space-mismatch", "Indexed with another embedder", str(error))


@bp.get("/memories/search")
@documented(
    query=SearchQuery,
    responses={200: SearchResults},
    problems={
        **QUERY_PROBLEM,
        409: "`vector-space-mismatch`: the namespace was indexed with another embedder",
    },
)
def search_memories() -> dict[str, Any]:
    """The k chunks most similar to q in a namespace (default: consolidated memories), best first."""
    query = parse_search_query(request.args.to_dict(flat=False))
    ext = extension()
    # Built once per web process, like the worker's; the same vector space the jobs wrote with.
    embedder = get_embedder(ext.settings)
    vector = embedder.embed([query.q]).vectors[0]
    hits = _store().search(query.namespace, vector, query.k, model=embedder.name)
    return SearchResults(
        namespace=query.namespace,
        query=query.q,
        k=query.k,
        embedder=embedder.name,
        hits=[SearchHit(**hit.__dict__) for hit in hits],
    ).model_dump(mode="json")


assert MEMORY_NAMESPACE == "memories", "SearchQuery's default namespace is the memories namespace"
