"""The OpenAPI 3.1 document, built from the pydantic models each /api/ view declares with @documented.

apispec assembles the document; pydantic writes every schema from the same models the views
validate with, so the two cannot drift. A route without @documented is missing from the document,
and a test fails on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from apispec import APISpec
from flask import Flask, current_app
from pydantic import BaseModel

from feynman_jobs.web.access import clients
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.problems import PROBLEM_MEDIA_TYPE, TYPE_PREFIX, Problem

API_PREFIX = "/api/"
OPENAPI_VERSION = "3.1.0"
REF_TEMPLATE = "#/components/schemas/{model}"
_CACHE_KEY = "feynman_jobs.openapi"
#: Problems any /api/ route may answer with (the problem `type` is TYPE_PREFIX + the slug in backticks).
COMMON_PROBLEMS = {
    401: "`unauthorized`: a bearer token is required and was missing or wrong",
    403: "`forbidden`: this needs an operator token, or a job enqueued with this token; "
    "`cross-site-request`: another site sent it with an ambient credential",
    503: "`redis-unavailable`: Redis cannot be reached; nothing was written, retry after Retry-After",
}
#: Problems of routes that read a JSON body.
BODY_PROBLEMS = {
    400: "`malformed-json`: the body is not valid UTF-8 JSON",
    413: "`request-entity-too-large`: the body is larger than FEYNMAN_MAX_BODY_BYTES",
    415: "`unsupported-media-type`: the body is not application/json",
    422: "`invalid-request` or `unknown-job-type`: the request fails validation; see `errors`",
}
#: Route-specific problems more than one route answers with.
IDEMPOTENCY_IN_USE = "`idempotency-key-in-use`: a request with this key is still being written; retry shortly"
BUDGET_EXCEEDED = (
    "`budget-exceeded`: the estimate does not fit a budget; says which, what is left, when it resets"
)
#: What a 503 means for a route that enqueues (back-pressure, Redis, and the wait for a replica).
UNAVAILABLE = (
    "`queue-full`: the queue holds FEYNMAN_MAX_QUEUED jobs (or would with this request), nothing was "
    "written; `redis-unavailable`: Redis cannot be reached; `replication-unconfirmed`: no replica "
    "confirmed the job within 500 ms. Retry after `Retry-After` with the same idempotency key"
)
#: The problem of a route whose query parameters fail validation.
QUERY_PROBLEM = {422: "`invalid-request`: a query parameter is invalid; `errors` points at each"}
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteDoc:
    """What one view takes and answers: models by role, problem statuses with their meaning."""

    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    problems: dict[int, str] = field(default_factory=dict)
    headers: dict[str, dict[str, Any]] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    body_optional: bool = False


def documented(
    *,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | None],
    problems: dict[int, str] | None = None,
    headers: dict[str, dict[str, Any]] | None = None,
    response_headers: dict[str, str] | None = None,
    body_optional: bool = False,
) -> Callable[[View], View]:
    """Declare a view's request and response models (put it right under the route decorator).

    `responses` maps each success status to its model (None: a JSON object the summary describes);
    `problems` maps each route-specific error status to "`slug`: meaning".
    """
    doc = RouteDoc(
        body, query, responses, problems or {}, headers or {}, response_headers or {}, body_optional
    )

    def attach(view: View) -> View:
        view.__openapi__ = doc  # type: ignore[attr-defined]
        return view

    return attach


_PATH_ARGUMENT = re.compile(r"<(?:([^:<>]+):)?([^<>]+)>")
_PATH_TYPES = {"int": "integer", "float": "number"}


def openapi_path(rule: str) -> str:
    """Werkzeug's `/jobs/<job_id>` (or `<int:n>`) as OpenAPI's `/jobs/{job_id}`."""
    return _PATH_ARGUMENT.sub(r"{\2}", rule)


def api_rules(app: Flask) -> list[tuple[str, str]]:
    """Every (path, method) the app serves under /api/, in OpenAPI's spelling."""
    pairs = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(API_PREFIX):
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                pairs.append((openapi_path(rule.rule), method.lower()))
    return pairs


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every documented /api/ route of `app`."""
    spec = APISpec(
        title="feynman_jobs",
        version="1",
        openapi_version=OPENAPI_VERSION,
        info={
            "description": "Background jobs for a Feynman-technique AI tutor, on RQ and Redis. Errors are "
            f"RFC 9457 problem documents whose `type` is `{TYPE_PREFIX}<slug>`; each error response "
            "names its slugs."
        },
        security=[{}, {"bearer": []}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    schemas = _SchemaSet(spec)
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        doc = getattr(view, "__openapi__", None)
        if not rule.rule.startswith(API_PREFIX) or not isinstance(doc, RouteDoc):
            continue
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": _PATH_TYPES.get(converter, "string")},
            }
            for converter, name in _PATH_ARGUMENT.findall(rule.rule)
        ]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation(doc, view, schemas, rule.endpoint)
            operation["parameters"] = params + operation["parameters"]
            paths.setdefault(openapi_path(rule.rule), {})[method.lower()] = operation
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def _operation(doc: RouteDoc, view: Callable[..., Any], schemas: _SchemaSet, endpoint: str) -> dict[str, Any]:
    summary = (view.__doc__ or endpoint).strip().splitlines()[0]
    parameters = [{"name": name, "in": "header", **spec} for name, spec in doc.headers.items()]
    if doc.query is not None:
        schema = doc.query.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.add_defs(schema)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            parameters.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    responses: dict[str, Any] = {}
    for status, model in doc.responses.items():
        response: dict[str, Any] = {"description": summary}
        schema = {"type": "object"} if model is None else schemas.ref(model, "serialization")
        response["content"] = {"application/json": {"schema": schema}}
        if doc.response_headers:
            response["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in doc.response_headers.items()
            }
        responses[str(status)] = response
    problems = {
        **COMMON_PROBLEMS,
        **(BODY_PROBLEMS if doc.body else {}),
        **(QUERY_PROBLEM if doc.query else {}),
    }
    problems |= doc.problems
    if doc.query is not None:
        # gunicorn refuses a request line over 4094 bytes itself, in HTML, before the app sees it.
        responses["414"] = {"description": "the URL is longer than the web server accepts"}
    for status, meaning in sorted(problems.items()):
        responses[str(status)] = {
            "description": meaning,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schemas.ref(Problem, "serialization")}},
        }
    operation: dict[str, Any] = {
        "operationId": endpoint.rsplit(".", 1)[-1],
        "summary": summary,
        "parameters": parameters,
        "responses": responses,
    }
    if doc.body is not None:
        operation["requestBody"] = {
            "required": not doc.body_optional,
            "content": {"application/json": {"schema": schemas.ref(doc.body, "validation")}},
        }
    return operation


class _SchemaSet:
    """Component schemas written by pydantic, each model registered once."""

    def __init__(self, spec: APISpec) -> None:
        self.spec = spec
        self.names: set[str] = set()

    def ref(self, model: type[BaseModel], mode: Any) -> dict[str, str]:
        name = model.__name__
        if name not in self.names:
            schema = model.model_json_schema(ref_template=REF_TEMPLATE, mode=mode)
            self.add_defs(schema)
            self.names.add(name)
            self.spec.components.schema(name, schema)
        return {"$ref": REF_TEMPLATE.format(model=name)}

    def add_defs(self, schema: dict[str, Any]) -> None:
        for name, definition in schema.pop("$defs", {}).items():
            if name not in self.names:
                self.names.add(name)
                self.spec.components.schema(name, definition)


def document_for(app: Flask) -> dict[str, Any]:
    """The app's document, built once: its routes do not change after start-up."""
    if _CACHE_KEY not in app.extensions:
        app.extensions[_CACHE_KEY] = build_document(app)
    document: dict[str, Any] = app.extensions[_CACHE_KEY]
    return document


bp = api_blueprint("feynman_openapi", __name__)


@bp.get("/openapi.json")
@documented(responses={200: None})
@clients
def openapi_document() -> dict[str, Any]:
    """This API's OpenAPI 3.1 document."""
    return document_for(current_app)
