"""Who may call what, in-process: the gate's rules one by one (real processes: tests/integration/test_*_mode,
test_credentials, test_cross_site)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}
CLIENT_TOKEN = "client-token-0123456789"
OTHER_CLIENT_TOKEN = "other-client-token-0123"
ADMIN_TOKEN = "admin-token-0123456789"


def client(redis_url: str, **overrides: Any) -> FlaskClient:
    return create_app(load_settings(redis_url=redis_url, **overrides)).test_client()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_credentials_only_loopback_clients_are_served(redis_url: str, redis: Redis) -> None:
    app = client(redis_url)
    assert app.get("/rq/").status_code == 200
    assert app.get("/api/queues").status_code == 200
    for path in ("/rq/", "/rq/0/data/queues.json", "/api/queues", "/metrics", "/no-such-page"):
        refused = app.get(path, environ_base=REMOTE)
        assert refused.status_code == 401, path
        assert "FEYNMAN_API_TOKENS" in refused.get_json()["detail"]
    assert app.get("/healthz", environ_base=REMOTE).status_code == 200
    assert app.get("/readyz", environ_base=REMOTE).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "feynman.example.com"},
        {"Host": "127.0.0.1.nip.io:8000"},
        {"X-Forwarded-For": "203.0.113.7"},
        {"X-Forwarded-Host": "localhost"},
        {"Forwarded": "for=203.0.113.7"},
        {"X-Real-IP": "203.0.113.7"},
    ],
)
def test_loopback_means_no_proxy_and_a_loopback_host_too(
    redis_url: str, redis: Redis, headers: dict[str, str]
) -> None:
    response = client(redis_url).get("/api/queues", headers=headers)
    assert response.status_code == 401
    assert "FEYNMAN_API_TOKENS" in response.get_json()["detail"]


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1", "127.0.0.1:9", "[::1]:8000", "LOCALHOST"])
def test_every_loopback_host_name_is_served(redis_url: str, redis: Redis, host: str) -> None:
    assert client(redis_url).get("/api/queues", headers={"Host": host}).status_code == 200


def test_basic_auth_opens_the_dashboard_only(redis_url: str, redis: Redis) -> None:
    app = client(redis_url, dashboard_user="ops", dashboard_password="s3cret", admin_tokens=ADMIN_TOKEN)
    refused = app.get("/rq/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert app.get("/rq/", headers=basic("ops", "wrong")).status_code == 401
    assert app.get("/rq/", headers=basic("ops", "s3cret"), environ_base=REMOTE).status_code == 200
    assert app.get("/rq/", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert app.get("/rq/", headers=bearer("nope-nope-nope-nope")).status_code == 401
    api = app.get("/api/queues", headers=basic("ops", "s3cret"))
    assert (api.status_code, api.headers["WWW-Authenticate"]) == (401, 'Bearer realm="feynman_jobs"')


def test_a_dashboard_password_asks_for_it_on_loopback_too(redis_url: str, redis: Redis) -> None:
    app = client(redis_url, dashboard_user="ops", dashboard_password="s3cret")
    assert app.get("/rq/").status_code == 401
    assert app.get("/api/queues").status_code == 200  # anonymous mode: the API on loopback
    assert app.get("/rq/", headers=basic("ops", "s3cret")).status_code == 200


def test_client_tokens_are_not_operator_tokens(redis_url: str, redis: Redis) -> None:
    app = client(redis_url, api_tokens=CLIENT_TOKEN, admin_tokens=ADMIN_TOKEN)
    assert app.get("/rq/").status_code == 401
    assert app.get("/rq/", headers=bearer(CLIENT_TOKEN)).status_code == 403
    assert app.get("/rq/", headers=bearer(ADMIN_TOKEN)).status_code == 200
    forbidden = app.post("/api/queues/pause", headers=bearer(CLIENT_TOKEN))
    assert forbidden.status_code == 403
    assert forbidden.get_json()["type"] == "urn:feynman-jobs:problem:forbidden"
    assert not redis.exists("rq:suspended")
    assert app.post("/api/queues/pause", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert app.post("/api/queues/resume", headers=bearer(ADMIN_TOKEN)).status_code == 200
    # Workers over HTTP are for operators.
    assert app.get("/api/workers", headers=bearer(CLIENT_TOKEN)).status_code == 403
    assert app.get("/api/workers", headers=bearer(ADMIN_TOKEN)).get_json() == {"workers": []}
    assert app.post("/api/workers/w-1/shutdown", headers=bearer(CLIENT_TOKEN)).status_code == 403
    missing = app.post("/api/workers/w-1/shutdown", headers=bearer(ADMIN_TOKEN))
    assert (missing.status_code, missing.get_json()["worker_name"]) == (404, "w-1")


def test_without_operator_tokens_api_tokens_keep_every_power(redis_url: str, redis: Redis) -> None:
    app = client(redis_url, api_tokens=CLIENT_TOKEN)
    assert app.get("/rq/").status_code == 401
    assert app.get("/rq/", headers=bearer(CLIENT_TOKEN)).status_code == 200
    assert app.post("/api/queues/pause", headers=bearer(CLIENT_TOKEN)).status_code == 200
    assert redis.exists("rq:suspended")
    assert app.post("/api/queues/resume", headers=bearer(CLIENT_TOKEN)).status_code == 200


@pytest.mark.parametrize("tokens", [None, CLIENT_TOKEN])
def test_metrics_need_a_token_when_tokens_are_set(redis_url: str, redis: Redis, tokens: str | None) -> None:
    app = client(redis_url, **({"api_tokens": tokens, "admin_tokens": ADMIN_TOKEN} if tokens else {}))
    anonymous = app.get("/metrics")
    assert anonymous.status_code == (401 if tokens else 200)
    authorized = app.get("/metrics", headers=bearer(CLIENT_TOKEN))
    assert authorized.status_code == 200
    assert 'feynman_queue_depth{queue="high"} 0.0' in authorized.text
    assert app.get("/healthz").status_code == 200


def test_metrics_show_each_configured_budget(redis_url: str, redis: Redis) -> None:
    app = client(redis_url, budget_daily_usd=5, budget_hourly_usd=0.5)
    text = app.get("/metrics").text
    assert 'feynman_budget_limit_usd{window="daily"} 5.0' in text
    assert 'feynman_budget_remaining_usd{window="hourly"} 0.5' in text
    assert 'feynman_budget_spent_usd{window="daily"} 0.0' in text
    assert "feynman_budget_limit_usd{" not in client(redis_url).get("/metrics").text
