"""The OpenAPI document: valid, covering every /api/ route, and true of the live app (schemathesis)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from redis import Redis

from feynman_jobs.queueing.catalog import CATALOG, public_types
from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app
from feynman_jobs.web.openapi import api_rules
from tests.support import VENV_BIN, http

#: Checks for "no 5xx, no response that breaks the schema, nothing the schema forbids accepted".
#: positive_data_acceptance is left out: a schema-valid body may name a dependency that does not
#: exist, or not fit a budget.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance,negative_data_rejection,unsupported_method,missing_required_header"
)


def test_the_document_is_valid_openapi(api: str, redis: Redis) -> None:
    code, headers, document = http("GET", api + "/api/openapi.json")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    validate(document)
    assert document["openapi"] == "3.1.0"
    create = document["paths"]["/api/jobs"]["post"]
    body = create["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TypedEnqueueRequest"}
    one_of = document["components"]["schemas"]["TypedEnqueueRequest"]
    assert set(one_of["discriminator"]["mapping"]) == set(public_types())
    assert "reap_abandoned_jobs" in CATALOG
    rollup = document["components"]["schemas"]["EnqueueRollupCosts"]
    assert rollup["required"] == ["type", "payload"]
    assert rollup["additionalProperties"] is False
    assert rollup["properties"]["payload"] == {"$ref": "#/components/schemas/RollupCosts"}
    granularity = document["components"]["schemas"]["RollupCosts"]["properties"]["granularity"]
    assert granularity["enum"] == ["hour", "day"]
    assert {"202", "200", "400", "401", "409", "413", "415", "422", "503"} <= set(create["responses"])
    problem = create["responses"]["422"]["content"]["application/problem+json"]["schema"]
    assert problem == {"$ref": "#/components/schemas/Problem"}


def test_every_api_route_is_in_the_document(redis_url: str) -> None:
    app = create_app(load_settings(redis_url=redis_url))
    with app.test_request_context():
        document = app.test_client().get("/api/openapi.json").get_json()
    rules = api_rules(app)
    assert ("/api/jobs/{job_id}", "get") in rules
    missing = [(path, method) for path, method in rules if method not in document["paths"].get(path, {})]
    assert missing == [], "add @documented(...) under the route decorator of these views"


@pytest.mark.timeout(450)  # its own bound is the subprocess's 400 s
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    api: str, redis: Redis, tmp_path: Path
) -> None:
    # Bounded by examples per operation (--max-time would make fuzzing repeat until it is spent) and by
    # the subprocess timeout; stateful runs are left out to keep bin/test short.
    run = subprocess.run(
        [
            str(VENV_BIN / "schemathesis"),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            api + "/api/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "60",
            "--seed",
            "20261123",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=400,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
