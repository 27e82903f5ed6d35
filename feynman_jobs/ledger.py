"""The cost ledger: every model call recorded atomically in Redis, and rollups of it by window (DESIGN §6)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from redis import Redis

from feynman_jobs import redisio
from feynman_jobs.queues import KEY_PREFIX
from feynman_jobs.settings import Price

LEDGER_KEY = KEY_PREFIX + "ledger"
#: All-time totals by model and job type; only ever incremented (Prometheus counters read it).
TOTALS_KEY = KEY_PREFIX + "costs:totals"
_METRICS = ("calls", "tokens_in", "tokens_out", "usd_micros")
#: Ledger entries older than this are trimmed: rollups keep the history.
LEDGER_RETENTION = timedelta(days=62)
Granularity = Literal["hour", "day"]
WINDOW_LENGTH: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def job_cost_key(job_id: str) -> str:
    """The hash where the ledger keeps one job's totals."""
    return f"{KEY_PREFIX}cost:job:{job_id}"


def cost_usd_micros(prices: Mapping[str, Price], model: str, tokens_in: int, tokens_out: int) -> int:
    """What a call costs in millionths of a dollar; a model missing from the price table costs 0."""
    price = prices.get(model)
    if price is None:
        return 0
    return round(tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok)


def record_call(
    connection: Redis,
    *,
    model: str,
    tokens_in: int,
    tokens_out: int,
    usd_micros: int,
    job_id: str,
    job_type: str,
    at: datetime | None = None,
) -> None:
    """Append one model call to the ledger and to its job's totals, in one transaction."""
    when = at or datetime.now(UTC)
    # Entry ids are the Redis server's clock, so workers on hosts with skewed clocks still append in
    # order; `at` (for back-filling and tests) must not be older than the newest entry.
    entry_id = f"{int(when.timestamp() * 1000)}-*" if at else "*"
    oldest = int((when - LEDGER_RETENTION).timestamp() * 1000)
    entry = {
        "model": model,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "usd_micros": usd_micros,
        "job_id": job_id,
        "job_type": job_type,
    }
    with connection.pipeline() as pipe:
        pipe.xadd(LEDGER_KEY, entry, id=entry_id, minid=oldest, approximate=True)  # type: ignore[arg-type]
        cost_key = job_cost_key(job_id)
        pipe.hincrby(cost_key, "tokens_in", tokens_in)
        pipe.hincrby(cost_key, "tokens_out", tokens_out)
        pipe.hincrby(cost_key, "usd_micros", usd_micros)
        pipe.hincrby(cost_key, "calls", 1)
        pipe.expire(cost_key, int(LEDGER_RETENTION.total_seconds()))
        for name, value in zip(_METRICS, (1, tokens_in, tokens_out, usd_micros), strict=True):
            pipe.hincrby(TOTALS_KEY, f"{model}|{job_type}|{name}", value)
        pipe.execute()


def totals(connection: Redis) -> list[dict[str, Any]]:
    """All-time calls, tokens and cost by model and job type, from the running totals."""
    raw: dict[bytes, bytes] = connection.hgetall(TOTALS_KEY)  # type: ignore[assignment]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for field, value in raw.items():
        model, job_type, name = field.decode().rsplit("|", 2)
        row = rows.setdefault((model, job_type), {"model": model, "job_type": job_type})
        row[name] = int(value)
    return [rows[key] for key in sorted(rows)]


def window_start(granularity: Granularity, at: datetime) -> datetime:
    """The start of the hour or day (UTC) that contains `at`."""
    at = at.astimezone(UTC)
    if granularity == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def rollup_key(granularity: Granularity, start: datetime) -> str:
    """Where the rollup of one window is stored."""
    return f"{KEY_PREFIX}costs:{granularity}:{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"


def rollup_window(connection: Redis, granularity: Granularity, start: datetime) -> dict[str, Any]:
    """Fold the ledger entries of one window into its rollup; running it again gives the same rollup."""
    start = window_start(granularity, start)
    end = start + WINDOW_LENGTH[granularity]
    first, last = int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"calls": 0, "tokens_in": 0, "tokens_out": 0, "usd_micros": 0}
    )
    cursor = f"{first}-0"
    while True:
        entries = redisio.xrange(connection, LEDGER_KEY, cursor, f"{last}-18446744073709551615", 1000)
        for _entry_id, fields in entries:
            entry = {key.decode(): value.decode() for key, value in fields.items()}
            bucket = totals[(entry["model"], entry["job_type"])]
            bucket["calls"] += 1
            for name in ("tokens_in", "tokens_out", "usd_micros"):
                bucket[name] += int(entry[name])
        if len(entries) < 1000:
            break
        cursor = "(" + redisio.text(entries[-1][0])
    rows: list[dict[str, Any]] = [
        {"model": model, "job_type": job_type, **sums} for (model, job_type), sums in sorted(totals.items())
    ]
    rollup = {
        "granularity": granularity,
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "window_end": end.isoformat().replace("+00:00", "Z"),
        "calls": sum(row["calls"] for row in rows),
        "tokens_in": sum(row["tokens_in"] for row in rows),
        "tokens_out": sum(row["tokens_out"] for row in rows),
        "usd": sum(row["usd_micros"] for row in rows) / 1_000_000,
        "by_model_and_type": rows,
    }
    with connection.pipeline() as pipe:
        pipe.set(rollup_key(granularity, start), json.dumps(rollup, sort_keys=True))
        pipe.zadd(
            f"{KEY_PREFIX}costs:{granularity}:index", {rollup_key(granularity, start): start.timestamp()}
        )
        pipe.execute()
    return rollup
