"""@documented on any blueprint: query models become parameters, typed path arguments keep their type."""

from __future__ import annotations

from typing import Any, Literal

from fakeredis import FakeRedis
from flask import Blueprint
from openapi_spec_validator import validate
from pydantic import BaseModel, Field

from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app
from feynman_jobs.web.openapi import api_rules, document_for, documented


class Listing(BaseModel):
    """Query of a listing."""

    status: Literal["queued", "failed"] | None = None
    limit: int = Field(20, ge=1, le=100)


class Page(BaseModel):
    """A page of ids."""

    ids: list[str]


def test_query_models_and_typed_path_arguments(fake_redis: FakeRedis) -> None:
    app = create_app(load_settings(redis_url="redis://127.0.0.1:1/0"), redis=fake_redis)
    extra = Blueprint("extra", __name__, url_prefix="/api")

    @extra.get("/things/<int:page>")
    @documented(query=Listing, responses={200: Page}, problems={404: "`not-found`: no such page"})
    def list_things(page: int) -> dict[str, Any]:
        """List things."""
        return {"ids": []}

    app.register_blueprint(extra)
    document = document_for(app)
    validate(document)
    operation = document["paths"]["/api/things/{page}"]["get"]
    parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert parameters["path", "page"]["schema"] == {"type": "integer"}
    assert parameters["query", "limit"]["schema"]["maximum"] == 100
    assert parameters["query", "limit"]["required"] is False
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Page"
    }
    assert "404" in operation["responses"]
    assert ("/api/things/{page}", "get") in api_rules(app)
