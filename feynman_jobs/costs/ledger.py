"""The cost ledger: every model call recorded atomically in Redis (architecture §6)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.clock import server_now
from feynman_jobs.providers.llm import LOCAL_ANALYZER, LOCAL_SUMMARIZER
from feynman_jobs.settings import Price
from feynman_jobs.text.embed import HashingEmbedder

_METRICS = ("calls", "tokens_in", "tokens_out", "usd_micros")
#: Ledger entries older than this are trimmed: rollups keep the history.
LEDGER_RETENTION = timedelta(days=62)


def spend_keys(at: datetime, zone: tzinfo = UTC) -> dict[str, str]:
    """The counters of spend (USD micros) for the budget windows containing `at`: total, day, hour,
    where days and hours begin in `zone` (FEYNMAN_TIMEZONE)."""
    at = at.astimezone(zone)
    return {window: keys.spend(window, at) for window in ("total", "daily", "hourly")}


#: How long a window's spend counter outlives its window.
SPEND_KEY_TTL = {"daily": 3 * 24 * 3600, "hourly": 3 * 3600}


#: The offline providers run on this machine: they cost nothing unless FEYNMAN_PRICES lists them.
OFFLINE_MODELS = frozenset({LOCAL_ANALYZER, LOCAL_SUMMARIZER, HashingEmbedder().name})
_FREE = Price(input_per_mtok=0, output_per_mtok=0)


def price_of(prices: Mapping[str, Price], model: str) -> Price | None:
    """The model's price: FEYNMAN_PRICES first, then 0 for an offline provider; None if unpriced."""
    return prices.get(model) or (_FREE if model in OFFLINE_MODELS else None)


def cost_usd_micros(prices: Mapping[str, Price], model: str, tokens_in: int, tokens_out: int) -> int:
    """What a call costs in millionths of a dollar. An unpriced remote model costs 0 here: with any
    budget set, settings refuse to start without its price (architecture §8)."""
    price = price_of(prices, model)
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
    zone: tzinfo = UTC,
) -> None:
    """Append one model call to the ledger and to its job's totals, in one transaction.

    A call made outside a job (a search's query embedding) has `job_id` '' and no per-job totals."""
    when = at or server_now(connection)
    # Entry ids and budget windows are the Redis server's clock, so workers on hosts with skewed clocks
    # still append in order and count in the right hour; `at` (for back-filling and tests) must not be
    # older than the newest entry.
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
        pipe.xadd(keys.LEDGER, entry, id=entry_id, minid=oldest, approximate=True)  # type: ignore[arg-type]
        if job_id:
            cost_key = keys.job_cost(job_id)
            pipe.hincrby(cost_key, "tokens_in", tokens_in)
            pipe.hincrby(cost_key, "tokens_out", tokens_out)
            pipe.hincrby(cost_key, "usd_micros", usd_micros)
            pipe.hincrby(cost_key, "calls", 1)
            pipe.expire(cost_key, int(LEDGER_RETENTION.total_seconds()))
        for name, value in zip(_METRICS, (1, tokens_in, tokens_out, usd_micros), strict=True):
            pipe.hincrby(keys.COST_TOTALS, f"{model}|{job_type}|{name}", value)
        for window, key in spend_keys(when, zone).items():
            pipe.incrby(key, usd_micros)
            if window in SPEND_KEY_TTL:
                pipe.expire(key, SPEND_KEY_TTL[window])
        pipe.execute()


def totals(connection: Redis) -> list[dict[str, Any]]:
    """All-time calls, tokens and cost by model and job type, from the running totals."""
    raw: dict[bytes, bytes] = connection.hgetall(keys.COST_TOTALS)  # type: ignore[assignment]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for field, value in raw.items():
        model, job_type, name = field.decode().rsplit("|", 2)
        row = rows.setdefault((model, job_type), {"model": model, "job_type": job_type})
        row[name] = int(value)
    return [rows[key] for key in sorted(rows)]
