"""Budgets and rate limits set at run time: stored in Redis, read by every process on its next check.

A value set here overrides the environment (null means no limit, whatever the environment says);
a value never set comes from the environment, else there is none. Each change keeps when it was made
and the fingerprint of the credential that made it, and is logged (architecture §6).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis import Redis

from feynman_jobs import keys, redisio
from feynman_jobs.clock import utc_iso
from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.providers.chat import CallKind
from feynman_jobs.settings import Settings

logger = logging.getLogger(__name__)

Source = Literal["runtime", "environment", "default"]
BUDGETS = ("total", "daily", "hourly")
KINDS: tuple[CallKind, ...] = ("chat", "embeddings")
LIMITS = ("rpm", "tpm", "rph")
#: What a cleared value is stored as: no limit, even if the environment sets one.
_NONE = "none"
#: The largest budget (USD) and rate limit accepted: far above any real one, and finite in micros.
MAX_BUDGET_USD = 1e9
MAX_LIMIT = 10**12
Usd = Annotated[float, Field(ge=0, le=MAX_BUDGET_USD, strict=True, allow_inf_nan=False)]
Limit = Annotated[int, Field(gt=0, le=MAX_LIMIT, strict=True)]


@dataclass(frozen=True)
class Control:
    """One budget or rate limit as it is in force now, and where it comes from."""

    value: float | None
    source: Source
    changed_at: str | None = None
    changed_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The value and its provenance, as the API shows them."""
        return {
            "source": self.source,
            "changed_at": self.changed_at,
            "changed_by": self.changed_by,
        }


def _environment_budgets(settings: Settings) -> dict[str, float | None]:
    return {
        "total": settings.budget_total_usd,
        "daily": settings.budget_daily_usd,
        "hourly": settings.budget_hourly_usd,
    }


def _environment_limits(settings: Settings) -> dict[str, int | None]:
    return {
        "chat.rpm": settings.llm_rpm,
        "chat.tpm": settings.llm_tpm,
        "chat.rph": settings.llm_rph,
        "embeddings.rpm": settings.embeddings_rpm,
        "embeddings.tpm": settings.embeddings_tpm,
        "embeddings.rph": settings.embeddings_rph,
    }


def _merge(stored: dict[str, str], environment: Mapping[str, float | None]) -> dict[str, Control]:
    merged = {}
    for name, env_value in environment.items():
        raw = stored.get(name)
        if raw is None:
            source: Source = "default" if env_value is None else "environment"
            merged[name] = Control(env_value, source)
            continue
        value = None if raw == _NONE else float(raw)
        merged[name] = Control(
            value, "runtime", stored.get(f"{name}:changed_at"), stored.get(f"{name}:changed_by")
        )
    return merged


def _read(connection: Redis, key: str) -> dict[str, str]:
    raw: dict[bytes, bytes] = connection.hgetall(key)  # type: ignore[assignment]
    return {redisio.text(field): redisio.text(value) for field, value in raw.items()}


def budgets(connection: Redis, settings: Settings) -> dict[str, Control]:
    """The total, daily and hourly budgets in force (USD), each with its source."""
    return _merge(_read(connection, keys.CONTROL_BUDGETS), _environment_budgets(settings))


def limits(connection: Redis, settings: Settings) -> dict[str, Control]:
    """The rate limits in force, by `kind.name` (`chat.rpm`, `embeddings.tpm`, …), each with its source."""
    return _merge(_read(connection, keys.CONTROL_LIMITS), _environment_limits(settings))


def _write(connection: Redis, key: str, what: str, changes: Mapping[str, float | None], who: str) -> None:
    now = utc_iso(datetime.now(UTC))
    fields: dict[str, str] = {}
    for name, value in changes.items():
        fields[name] = _NONE if value is None else repr(value)
        fields[f"{name}:changed_at"] = now
        fields[f"{name}:changed_by"] = who
    if fields:
        connection.hset(key, mapping=fields)  # type: ignore[arg-type]
        logger.info("%s changed by %s: %s", what, who, ", ".join(f"{n}={v}" for n, v in changes.items()))


def set_budgets(
    connection: Redis, settings: Settings, changes: Mapping[str, float | None], *, who: str
) -> None:
    """Set budgets (USD; None: no limit) for every process from now on. A budget is refused while a
    remote model has no price (InvalidRequest), as it is at start."""
    set_now = [f"{name}_usd" for name, value in changes.items() if value is not None]
    problem = settings.price_problem(set_now)
    if problem:
        raise InvalidRequest(
            problem, [FieldError(f"#/{name}", "a remote model has no price") for name in set_now]
        )
    _write(connection, keys.CONTROL_BUDGETS, "budgets", changes, who)


def set_limits(connection: Redis, changes: Mapping[str, int | None], *, who: str) -> None:
    """Set rate limits (`kind.name` -> value; None: no limit) for every process from now on."""
    _write(connection, keys.CONTROL_LIMITS, "rate limits", {n: v for n, v in changes.items()}, who)


def reset_total(connection: Redis, *, who: str) -> str:
    """Start the total budget afresh: its spend counter goes to 0; the ledger and rollups keep every call."""
    now = utc_iso(datetime.now(UTC))
    with connection.pipeline() as pipe:
        pipe.getset(keys.spend("total", datetime.now(UTC)), 0)
        pipe.hset(keys.CONTROL_BUDGETS, mapping={"total:reset_at": now, "total:reset_by": who})
        before, _ = pipe.execute()
    logger.info("total budget reset by %s (it had counted $%.6f)", who, int(before or 0) / 1e6)
    return now


def total_reset(connection: Redis) -> tuple[str | None, str | None]:
    """When the total budget was last started afresh, and by whom (None: never)."""
    at, by = connection.hmget(keys.CONTROL_BUDGETS, ["total:reset_at", "total:reset_by"])
    return (redisio.text(at) if at else None, redisio.text(by) if by else None)


class BudgetUpdate(BaseModel):
    """`PUT /api/budget`: the budgets to set, in USD; null means no limit; a field left out stays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total_usd: Usd | None = None
    daily_usd: Usd | None = None
    hourly_usd: Usd | None = None

    @model_validator(mode="after")
    def _something_to_set(self) -> BudgetUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of total_usd, daily_usd, hourly_usd")
        return self

    def changes(self) -> dict[str, float | None]:
        """Budget name -> new limit, for the fields given."""
        return {field.removesuffix("_usd"): getattr(self, field) for field in sorted(self.model_fields_set)}


class KindLimits(BaseModel):
    """The rate limits of one kind of call to set; null means no limit; a field left out stays."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: Limit | None = None
    tpm: Limit | None = None
    rph: Limit | None = None


class LimitsUpdate(BaseModel):
    """`PUT /api/limits`: `{"chat": {"rpm": 500}, "embeddings": {"tpm": null}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chat: KindLimits | None = None
    embeddings: KindLimits | None = None

    @model_validator(mode="after")
    def _something_to_set(self) -> LimitsUpdate:
        if not self.changes():
            raise ValueError("give at least one limit of chat or embeddings: rpm, tpm or rph")
        return self

    def changes(self) -> dict[str, int | None]:
        """`kind.name` -> new limit, for the fields given."""
        out: dict[str, int | None] = {}
        for kind in KINDS:
            given = getattr(self, kind)
            for name in sorted(given.model_fields_set) if given is not None else []:
                out[f"{kind}.{name}"] = getattr(given, name)
        return out
