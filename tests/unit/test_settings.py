"""Settings come from the environment, typed, with defaults; a bad value names its variable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from feynman_jobs.errors import ConfigError
from feynman_jobs.settings import DEFAULT_FAILURE_TTL, DEFAULT_RESULT_TTL, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("FEYNMAN_") or name in {"REDIS_URL", "PORT"}:
            monkeypatch.delenv(name)


def test_defaults_work_on_a_developer_machine() -> None:
    settings = load_settings()
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.port == 8000
    assert settings.api_tokens == settings.admin_tokens == ()
    assert settings.anonymous_mode
    assert settings.result_ttl == DEFAULT_RESULT_TTL > 500
    assert settings.failure_ttl == DEFAULT_FAILURE_TTL
    assert settings.llm_base_url is None
    assert settings.budget_daily_usd is None
    assert settings.llm_rpm is None
    assert settings.log_format == "text"


def test_values_are_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "rediss://user:secret@cache.internal:6380/2")
    monkeypatch.setenv("PORT", "5001")
    monkeypatch.setenv("FEYNMAN_API_TOKENS", " alpha-0123456789ab , beta-0123456789abc,,")
    monkeypatch.setenv("FEYNMAN_ADMIN_TOKENS", "gamma-0123456789abc")
    monkeypatch.setenv("FEYNMAN_PRICES", '{"gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6}}')
    monkeypatch.setenv("FEYNMAN_BUDGET_DAILY_USD", "2.5")
    monkeypatch.setenv("FEYNMAN_LLM_RPM", "60")
    monkeypatch.setenv("FEYNMAN_RESULT_TTL", "3600")
    settings = load_settings()
    assert settings.redis_url == "rediss://user:secret@cache.internal:6380/2"
    assert settings.port == 5001
    assert [token.get_secret_value() for token in settings.api_tokens] == [
        "alpha-0123456789ab",
        "beta-0123456789abc",
    ]
    assert [token.get_secret_value() for token in settings.admin_tokens] == ["gamma-0123456789abc"]
    assert not settings.anonymous_mode
    assert settings.prices["gpt-4o-mini"].output_per_mtok == 0.6
    assert settings.budget_daily_usd == 2.5
    assert settings.llm_rpm == 60
    assert settings.result_ttl == 3600


def test_secrets_are_not_shown_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEYNMAN_API_TOKENS", "very-secret-token")
    monkeypatch.setenv("FEYNMAN_ADMIN_TOKENS", "another-secret-token")
    monkeypatch.setenv("FEYNMAN_LLM_API_KEY", "sk-also-secret")
    monkeypatch.setenv("FEYNMAN_WEBHOOK_SECRET", "whsec_c2VjcmV0LXdlYmhvb2sta2V5IQ==")
    shown = repr(load_settings())
    for value in ("very-secret-token", "another-secret-token", "sk-also-secret", "c2VjcmV0"):
        assert value not in shown


def test_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEYNMAN_BUDGET_DAILY_USD", "")
    assert load_settings().budget_daily_usd is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FEYNMAN_LLM_RPM", "sixty"),
        ("FEYNMAN_LLM_RPM", "0"),
        ("PORT", "99999"),
        ("REDIS_URL", "localhost:6379"),
        ("FEYNMAN_BUDGET_DAILY_USD", "-1"),
        ("FEYNMAN_PRICES", "{not json"),
        ("FEYNMAN_PRICES", '{"m": {"input_per_mtok": 1}}'),
        ("FEYNMAN_LOG_LEVEL", "LOUD"),
        ("FEYNMAN_LOG_FORMAT", "xml"),
        ("FEYNMAN_LLM_BASE_URL", "api.openai.com/v1"),
        ("FEYNMAN_LLM_TIMEOUT_S", "0"),
        ("FEYNMAN_EMBEDDINGS_BASE_URL", "localhost:8080/v1"),
        ("FEYNMAN_EMBEDDINGS_BATCH", "0"),
        ("FEYNMAN_API_TOKENS", "long-enough-0123456,short"),
        ("FEYNMAN_ADMIN_TOKENS", "fifteen-chars-x"),
        ("FEYNMAN_WEBHOOK_SECRET", "a-plain-secret-without-prefix"),
        ("FEYNMAN_WEBHOOK_SECRET", "whsec_not*base64*at*all"),
        ("FEYNMAN_WEBHOOK_SECRET", "whsec_c2hvcnQ="),
        ("FEYNMAN_MAX_QUEUED", "0"),
        ("FEYNMAN_REDIS_SENTINELS", "10.0.0.1"),
        ("FEYNMAN_REDIS_SENTINELS", "10.0.0.1:26379,10.0.0.2:port"),
        ("FEYNMAN_REDIS_MIN_REPLICAS", "-1"),
    ],
)
def test_a_bad_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


def test_endpoint_urls_lose_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEYNMAN_EMBEDDINGS_BASE_URL", "http://localhost:8080/v1/")
    assert load_settings().embeddings_base_url == "http://localhost:8080/v1"
    assert load_settings().embeddings_model == "text-embedding-3-small"


def test_every_variable_is_in_the_readme_and_env_example() -> None:
    root = Path(__file__).resolve().parents[2]
    readme, example = (root / "README.md").read_text(), (root / ".env.example").read_text()
    for field in Settings.model_fields.values():
        variable = str(field.validation_alias)
        assert f"`{variable}`" in readme, variable
        assert f"\n{variable}=" in example, variable


def test_a_budget_needs_a_price_for_every_remote_model() -> None:
    embed: dict[str, Any] = {"embeddings_base_url": "http://127.0.0.1:9/v1", "embeddings_model": "embed-x"}
    with pytest.raises(
        ConfigError, match=r"no price for the remote model 'embed-x' \(FEYNMAN_EMBEDDINGS_MODEL\)"
    ):
        load_settings(budget_hourly_usd=1.0, **embed)
    assert load_settings(**embed).unpriced_models() == [("FEYNMAN_EMBEDDINGS_MODEL", "embed-x")]  # no budget
    priced = {"embed-x": {"input_per_mtok": 0.02, "output_per_mtok": 0}}
    assert load_settings(budget_hourly_usd=1.0, prices=priced, **embed).unpriced_models() == []
    assert load_settings(budget_total_usd=0.0).budget_variables == ["FEYNMAN_BUDGET_TOTAL_USD"]  # offline
