"""What every API blueprint shares: token auth, problem documents, JSON bodies and query models."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import Blueprint, Response, request
from pydantic import BaseModel, ValidationError

from feynman_jobs.errors import InvalidRequest
from feynman_jobs.queueing.requests import field_errors
from feynman_jobs.web.auth import require_token
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import MalformedBody, UnsupportedMediaType, register_handlers

Query = TypeVar("Query", bound=BaseModel)


def api_blueprint(name: str, import_name: str) -> Blueprint:
    """A blueprint under /api that requires a token when tokens are configured and answers in problems."""
    bp = Blueprint(name, import_name, url_prefix="/api")
    register_handlers(bp)

    @bp.before_request
    def _authenticate() -> Response | None:
        return require_token(extension().settings)

    return bp


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body() -> Any:
    """The request body as JSON, or a 4xx problem: wrong media type, too large, not UTF-8, not JSON."""
    if request.mimetype != "application/json":
        raise UnsupportedMediaType()
    raw = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedBody("it is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        detail = (
            str(exc) if isinstance(exc, json.JSONDecodeError) else "nested too deeply or a number too large"
        )
        raise MalformedBody(detail) from None


def parse_body(model: type[Query]) -> Query:
    """The JSON body validated by `model`; an empty body means the model's defaults."""
    body = read_json_body() if request.content_length else {}
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest("the request body is invalid", field_errors(exc)) from None


def parse_query(model: type[Query]) -> Query:
    """The query string validated by `model` (unknown parameters are an error)."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise InvalidRequest("the query parameters are invalid", field_errors(exc, ("query",))) from None
