"""The one way a request's input is read: a JSON body or a query string, validated by a model.

Every refusal is a FeynmanError the problem table answers: 415 for another media type, 400 for a
body that is not JSON, 413 past the size limit (werkzeug), 422 naming each bad field by pointer.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from feynman_jobs.errors import FieldError, InvalidRequest, MalformedBody, UnsupportedMediaType, field_errors

Model = TypeVar("Model", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_body() -> Any:
    """The request body as JSON: it must be sent as application/json, be UTF-8 and parse."""
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


def require_json_or_no_body() -> None:
    """A state-changing request sends JSON or nothing at all: an empty `text/plain` POST (what a form on
    another site can send without asking) is refused like any other media type."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if (request.content_type or request.content_length) and request.mimetype != "application/json":
        raise UnsupportedMediaType()


def validate(
    model: type[Model], data: Any, *, what: str = "request body", prefix: tuple[str, ...] = ()
) -> Model:
    """`data` validated by `model`; InvalidRequest with a pointer per bad field otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(f"the {what} is invalid", field_errors(exc, prefix)) from None


def parse_body(model: type[Model], *, optional: bool = False) -> Model:
    """The JSON body validated by `model`; with `optional`, no body at all means the model's defaults."""
    if optional and not request.content_length:
        return validate(model, {})
    return validate(model, read_json_body())


def parse_query(model: type[Model]) -> Model:
    """The query string validated by `model`: each parameter at most once, unknown ones refused."""
    args = request.args.to_dict(flat=False)
    repeated = [
        FieldError(f"#/query/{name}", "give this parameter once") for name, v in args.items() if len(v) > 1
    ]
    if repeated:
        raise InvalidRequest("the query parameters are invalid", repeated)
    return validate(
        model, {name: values[0] for name, values in args.items()}, what="query parameters", prefix=("query",)
    )
