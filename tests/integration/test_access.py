"""Who may see the dashboard and /metrics: basic auth, an API token, or loopback when nothing is set."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from flask.testing import FlaskClient
from redis import Redis

from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app

REMOTE = {"REMOTE_ADDR": "203.0.113.7"}


def client(redis_url: str, **overrides: Any) -> FlaskClient:
    return create_app(load_settings(redis_url=redis_url, **overrides)).test_client()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_without_credentials_only_loopback_clients_see_the_dashboard(redis_url: str, redis: Redis) -> None:
    app = client(redis_url)
    assert app.get("/rq/").status_code == 200
    refused = app.get("/rq/", environ_base=REMOTE)
    assert refused.status_code == 403
    assert app.get("/rq/0/data/queues.json", environ_base=REMOTE).status_code == 403


def test_basic_auth_or_an_api_token_opens_the_dashboard(redis_url: str, redis: Redis) -> None:
    app = client(
        redis_url,
        dashboard_user="ops",
        dashboard_password="s3cret",
        api_tokens="tok-1,tok-2",
    )
    refused = app.get("/rq/")
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic ")
    assert app.get("/rq/", headers=basic("ops", "wrong")).status_code == 401
    assert app.get("/rq/", headers=basic("ops", "s3cret"), environ_base=REMOTE).status_code == 200
    assert app.get("/rq/", headers={"Authorization": "Bearer tok-2"}).status_code == 200
    assert app.get("/rq/", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_api_tokens_alone_close_the_dashboard_to_loopback_too(redis_url: str, redis: Redis) -> None:
    app = client(redis_url, api_tokens="tok-1")
    assert app.get("/rq/").status_code == 401
    assert app.get("/rq/", headers={"Authorization": "Bearer tok-1"}).status_code == 200


@pytest.mark.parametrize("tokens", [None, "tok-1"])
def test_metrics_need_a_token_when_tokens_are_set(redis_url: str, redis: Redis, tokens: str | None) -> None:
    app = client(redis_url, **({"api_tokens": tokens} if tokens else {}))
    anonymous = app.get("/metrics")
    assert anonymous.status_code == (401 if tokens else 200)
    authorized = app.get("/metrics", headers={"Authorization": "Bearer tok-1"})
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
