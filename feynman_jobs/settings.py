"""One frozen, typed settings object, read from the environment in one place (architecture §8)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from feynman_jobs.errors import ConfigError

DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_PORT = 8000
#: Finished jobs stay readable for a week: RQ's default of 500 s is too short for a status API.
DEFAULT_RESULT_TTL = 7 * 24 * 3600
#: Failed jobs are the dead-letter queue; keep them for a month.
DEFAULT_FAILURE_TTL = 30 * 24 * 3600
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_LLM_MODEL = "gpt-4o-mini"
#: Seconds an LLM or embeddings request may take before the attempt is retried.
DEFAULT_LLM_TIMEOUT_S = 60.0
DEFAULT_EMBEDDINGS_MODEL = "text-embedding-3-small"
#: Texts sent in one embeddings request.
DEFAULT_EMBEDDINGS_BATCH = 64
#: How long an idempotency key keeps answering with the job it first created.
DEFAULT_IDEMPOTENCY_TTL = 24 * 3600
#: Jobs one worker line runs at once (threads in one process). Measured in bench/concurrency.py:
#: jobs here wait on a model, so 16 slots keep one ~80 MB process busy (docs/benchmarks.md).
DEFAULT_WORKER_CONCURRENCY = 16
#: Shortest bearer token accepted: a shorter one is guessable, so it stops the process at start.
MIN_TOKEN_CHARS = 16
#: Standard Webhooks secrets are `whsec_` + base64 of the key; verifier libraries expect that form.
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
MIN_WEBHOOK_KEY_BYTES = 16


class Price(BaseModel):
    """USD per million tokens for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


class Settings(BaseSettings):
    """Every tunable of the service; each field names the variable it is read from."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", env_ignore_empty=True, populate_by_name=True
    )

    redis_url: str = Field(DEFAULT_REDIS_URL, validation_alias="REDIS_URL")
    port: int = Field(DEFAULT_PORT, ge=1, le=65535, validation_alias="PORT")
    api_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field((), validation_alias="FEYNMAN_API_TOKENS")
    admin_tokens: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), validation_alias="FEYNMAN_ADMIN_TOKENS"
    )
    dashboard_user: str | None = Field(None, validation_alias="FEYNMAN_DASHBOARD_USER")
    dashboard_password: SecretStr | None = Field(None, validation_alias="FEYNMAN_DASHBOARD_PASSWORD")
    llm_base_url: str | None = Field(None, validation_alias="FEYNMAN_LLM_BASE_URL")
    llm_api_key: SecretStr | None = Field(None, validation_alias="FEYNMAN_LLM_API_KEY")
    llm_model: str = Field(DEFAULT_LLM_MODEL, min_length=1, validation_alias="FEYNMAN_LLM_MODEL")
    llm_timeout_s: float = Field(
        DEFAULT_LLM_TIMEOUT_S, gt=0, le=600, validation_alias="FEYNMAN_LLM_TIMEOUT_S"
    )
    embeddings_base_url: str | None = Field(None, validation_alias="FEYNMAN_EMBEDDINGS_BASE_URL")
    embeddings_api_key: SecretStr | None = Field(None, validation_alias="FEYNMAN_EMBEDDINGS_API_KEY")
    embeddings_model: str = Field(
        DEFAULT_EMBEDDINGS_MODEL, min_length=1, validation_alias="FEYNMAN_EMBEDDINGS_MODEL"
    )
    embeddings_batch: int = Field(
        DEFAULT_EMBEDDINGS_BATCH, ge=1, le=2048, validation_alias="FEYNMAN_EMBEDDINGS_BATCH"
    )
    prices: dict[str, Price] = Field(default_factory=dict, validation_alias="FEYNMAN_PRICES")
    budget_total_usd: float | None = Field(None, ge=0, validation_alias="FEYNMAN_BUDGET_TOTAL_USD")
    budget_daily_usd: float | None = Field(None, ge=0, validation_alias="FEYNMAN_BUDGET_DAILY_USD")
    budget_hourly_usd: float | None = Field(None, ge=0, validation_alias="FEYNMAN_BUDGET_HOURLY_USD")
    llm_rpm: int | None = Field(None, gt=0, validation_alias="FEYNMAN_LLM_RPM")
    llm_tpm: int | None = Field(None, gt=0, validation_alias="FEYNMAN_LLM_TPM")
    llm_rph: int | None = Field(None, gt=0, validation_alias="FEYNMAN_LLM_RPH")
    embeddings_rpm: int | None = Field(None, gt=0, validation_alias="FEYNMAN_EMBEDDINGS_RPM")
    embeddings_tpm: int | None = Field(None, gt=0, validation_alias="FEYNMAN_EMBEDDINGS_TPM")
    embeddings_rph: int | None = Field(None, gt=0, validation_alias="FEYNMAN_EMBEDDINGS_RPH")
    worker_concurrency: int = Field(
        DEFAULT_WORKER_CONCURRENCY, ge=1, le=256, validation_alias="FEYNMAN_WORKER_CONCURRENCY"
    )
    result_ttl: int = Field(DEFAULT_RESULT_TTL, gt=0, validation_alias="FEYNMAN_RESULT_TTL")
    failure_ttl: int = Field(DEFAULT_FAILURE_TTL, gt=0, validation_alias="FEYNMAN_FAILURE_TTL")
    idempotency_ttl: int = Field(DEFAULT_IDEMPOTENCY_TTL, gt=0, validation_alias="FEYNMAN_IDEMPOTENCY_TTL")
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024, validation_alias="FEYNMAN_MAX_BODY_BYTES")
    timezone: str = Field("UTC", validation_alias="FEYNMAN_TIMEZONE")
    log_level: str = Field("INFO", validation_alias="FEYNMAN_LOG_LEVEL")
    log_format: Literal["text", "json"] = Field("text", validation_alias="FEYNMAN_LOG_FORMAT")
    webhook_secret: SecretStr | None = Field(None, validation_alias="FEYNMAN_WEBHOOK_SECRET")
    webhook_hosts: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="FEYNMAN_WEBHOOK_HOSTS")
    max_queued: int | None = Field(None, gt=0, validation_alias="FEYNMAN_MAX_QUEUED")
    redis_sentinels: Annotated[tuple[tuple[str, int], ...], NoDecode] = Field(
        (), validation_alias="FEYNMAN_REDIS_SENTINELS"
    )
    redis_sentinel_master: str | None = Field(None, validation_alias="FEYNMAN_REDIS_SENTINEL_MASTER")
    redis_sentinel_password: SecretStr | None = Field(
        None, validation_alias="FEYNMAN_REDIS_SENTINEL_PASSWORD"
    )
    #: None: as many replicas as the master has connected, at most 1; 0: no WAIT.
    redis_min_replicas: int | None = Field(None, ge=0, le=16, validation_alias="FEYNMAN_REDIS_MIN_REPLICAS")

    @field_validator("api_tokens", "admin_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(token.strip() for token in value.split(",") if token.strip())
        return value

    @field_validator("api_tokens", "admin_tokens")
    @classmethod
    def _check_token_length(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(token.get_secret_value()) < MIN_TOKEN_CHARS for token in value):
            raise ValueError(f"every token must be at least {MIN_TOKEN_CHARS} characters long")
        return value

    @field_validator("webhook_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(host.strip().lower() for host in value.split(",") if host.strip())
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            webhook_key(value)
        return value

    @property
    def anonymous_mode(self) -> bool:
        """No bearer token of either kind is configured: loopback callers are served without one."""
        return not self.api_tokens and not self.admin_tokens

    @property
    def budget_variables(self) -> list[str]:
        """The budget variables that are set."""
        fields = ("budget_total_usd", "budget_daily_usd", "budget_hourly_usd")
        return [
            str(Settings.model_fields[f].validation_alias) for f in fields if getattr(self, f) is not None
        ]

    def unpriced_models(self) -> list[tuple[str, str]]:
        """(variable, model) of each configured remote model that FEYNMAN_PRICES does not price."""
        remote = [
            ("FEYNMAN_LLM_MODEL", self.llm_model if self.llm_base_url else None),
            ("FEYNMAN_EMBEDDINGS_MODEL", self.embeddings_model if self.embeddings_base_url else None),
        ]
        return [(variable, model) for variable, model in remote if model and model not in self.prices]

    def price_problem(self, budgets: list[str]) -> str | None:
        """Why these budgets cannot be kept: a remote model without a price would spend uncounted."""
        unpriced = self.unpriced_models()
        if not budgets or not unpriced:
            return None
        models = ", ".join(f"{model!r} ({variable})" for variable, model in unpriced)
        return (
            f"FEYNMAN_PRICES has no price for the remote model {models} while a budget is set "
            f"({', '.join(budgets)}): its calls would cost $0 against the budget; add the model to "
            "FEYNMAN_PRICES or unset the budget"
        )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("redis_sentinels", mode="before")
    @classmethod
    def _split_sentinels(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        addresses = []
        for part in (part.strip() for part in value.split(",") if part.strip()):
            host, _, port = part.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{part!r} is not host:port")
            addresses.append((host.strip("[]"), int(port)))
        return tuple(addresses)

    @model_validator(mode="after")
    def _check_sentinel_master(self) -> Settings:
        if self.redis_sentinels and not self.redis_sentinel_master:
            raise ValueError("FEYNMAN_REDIS_SENTINELS needs FEYNMAN_REDIS_SENTINEL_MASTER, the master's name")
        return self

    @field_validator("llm_base_url", "embeddings_base_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name, such as UTC or Asia/Shanghai") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        """FEYNMAN_TIMEZONE: where days and hours begin for budgets, rollups and the costs page."""
        return ZoneInfo(self.timezone)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


def webhook_key(secret: SecretStr) -> bytes:
    """The signing key of a Standard Webhooks secret: `whsec_` followed by base64 (at least 16 bytes)."""
    text = secret.get_secret_value()
    if not text.startswith(WEBHOOK_SECRET_PREFIX):
        raise ValueError(f"must start with {WEBHOOK_SECRET_PREFIX} (the Standard Webhooks convention)")
    try:
        key = base64.b64decode(text.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError(f"must be {WEBHOOK_SECRET_PREFIX} followed by base64") from None
    if len(key) < MIN_WEBHOOK_KEY_BYTES:
        raise ValueError(f"the key must be at least {MIN_WEBHOOK_KEY_BYTES} bytes (24 base64 characters)")
    return key


def load_settings(*, check_prices: bool = True, **overrides: object) -> Settings:
    """Read the settings from the environment; raise ConfigError naming the bad variable.

    With `check_prices`, a budget set while a remote model has no price is a ConfigError too (doctor
    reads without it, to report the problem as a finding)."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"bad configuration: {problems}") from None
    except SettingsError as exc:
        # pydantic-settings names the field, not the variable: translate for the operator.
        match = re.search(r'field "(\w+)"', str(exc))
        field = Settings.model_fields.get(match.group(1)) if match else None
        variable = field.validation_alias if field else "environment"
        raise ConfigError(f"bad configuration: {variable}: not valid JSON") from None
    problem = settings.price_problem(settings.budget_variables) if check_prices else None
    if problem:
        raise ConfigError(f"bad configuration: {problem}")
    return settings
