"""Cost rollups: the ledger folded into hourly and daily windows by model and job type.

A rollup of a window is computed from the ledger and overwrites the stored one, so running it
twice, late, or from two schedulers gives the same figures. Runs without a window catch up on every
window since the last one completed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict
from redis import Redis

from feynman_jobs import keys, redisio
from feynman_jobs.clock import period_end, period_start, utc_iso
from feynman_jobs.costs.ledger import LEDGER_RETENTION
from feynman_jobs.queueing.payloads import text_only

Granularity = Literal["hour", "day"]
WINDOW_LENGTH: dict[str, timedelta] = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


class CostsQuery(BaseModel):
    """GET /api/costs: rollups of one granularity whose window starts in [since, until)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granularity: Granularity = "hour"
    since: Annotated[AwareDatetime, BeforeValidator(text_only)] | None = None
    until: Annotated[AwareDatetime, BeforeValidator(text_only)] | None = None


def window_start(granularity: Granularity, at: datetime, zone: tzinfo = UTC) -> datetime:
    """The start (UTC) of the hour or day that contains `at`, where days begin in `zone`."""
    return period_start(granularity, at, zone)


def rollup_window(
    connection: Redis, granularity: Granularity, start: datetime, zone: tzinfo = UTC
) -> dict[str, Any]:
    """Fold the ledger entries of one window into its rollup; running it again gives the same rollup."""
    rollup = compute_window(connection, granularity, start, zone)
    start = window_start(granularity, start, zone)
    with connection.pipeline() as pipe:
        pipe.set(keys.rollup(granularity, start), json.dumps(rollup, sort_keys=True))
        pipe.zadd(keys.rollup_index(granularity), {keys.rollup(granularity, start): start.timestamp()})
        pipe.execute()
    return rollup


def compute_window(
    connection: Redis, granularity: Granularity, start: datetime, zone: tzinfo = UTC
) -> dict[str, Any]:
    """The rollup of one window, computed from the ledger without storing it."""
    start = window_start(granularity, start, zone)
    end = period_end(granularity, start, zone)
    first, last = int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
    totals: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"calls": 0, "tokens_in": 0, "tokens_out": 0, "usd_micros": 0}
    )
    cursor = f"{first}-0"
    while True:
        entries = redisio.xrange(connection, keys.LEDGER, cursor, f"{last}-18446744073709551615", 1000)
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
        "window_start": utc_iso(start),
        "window_end": utc_iso(end),
        "calls": sum(row["calls"] for row in rows),
        "tokens_in": sum(row["tokens_in"] for row in rows),
        "tokens_out": sum(row["tokens_out"] for row in rows),
        "usd": sum(row["usd_micros"] for row in rows) / 1_000_000,
        "by_model_and_type": rows,
    }
    return rollup


def catch_up(
    connection: Redis, granularity: Granularity, now: datetime | None = None, zone: tzinfo = UTC
) -> list[dict[str, Any]]:
    """Roll up every window from the one after the last completed rollup through the current one."""
    current = window_start(granularity, now or datetime.now(UTC), zone)
    oldest = window_start(granularity, current - LEDGER_RETENTION, zone)
    raw = connection.get(keys.rollup_marker(granularity))
    if raw:
        start = period_end(granularity, datetime.fromisoformat(redisio.text(raw)), zone)
    else:  # the first run: from the oldest entry the ledger still holds
        first = redisio.xrange(connection, keys.LEDGER, "-", "+", 1)
        first_ms = int(first[0][0].decode().split("-")[0]) if first else None
        start = (
            window_start(granularity, datetime.fromtimestamp(first_ms / 1000, UTC), zone)
            if first_ms
            else current
        )
    start = max(start, oldest)
    rollups = []
    while start <= current:
        rollups.append(rollup_window(connection, granularity, start, zone))
        start = period_end(granularity, start, zone)
    completed = window_start(granularity, current - timedelta(seconds=1), zone)
    if not raw or datetime.fromisoformat(redisio.text(raw)) < completed:
        connection.set(keys.rollup_marker(granularity), completed.isoformat())
    return rollups


def costs_document(
    connection: Redis, granularity: Granularity, since: datetime, until: datetime, zone: tzinfo = UTC
) -> dict[str, Any]:
    """`GET /api/costs` (and the costs page): stored rollups in [since, until), the current window live."""
    current = window_start(granularity, datetime.now(UTC), zone)
    windows = [
        w for w in stored(connection, granularity, since, until) if w["window_start"] < utc_iso(current)
    ]
    if since <= current < until:
        windows.append(compute_window(connection, granularity, current, zone))
    return {"granularity": granularity, "since": utc_iso(since), "until": utc_iso(until), "windows": windows}


def stored(
    connection: Redis, granularity: Granularity, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Stored rollups whose window starts in [since, until), oldest first."""
    found = [
        redisio.text(key)
        for key in connection.zrangebyscore(
            keys.rollup_index(granularity), since.timestamp(), f"({until.timestamp()}"
        )
    ]
    if not found:
        return []
    return [json.loads(redisio.text(raw)) for raw in connection.mget(found) if raw]
