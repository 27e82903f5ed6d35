"""Time as the service writes and reads it: UTC, RFC 3339 with a `Z`, and the Redis server's clock.

Judgements that compare moments written by different hosts (is a worker's heartbeat stale?) belong
on the Redis server's clock, not the local one: hosts drift. `server_now` reads it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo

from redis import Redis


def utc_iso(moment: datetime) -> str:
    """`moment` in UTC as RFC 3339 with a `Z` (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 / RFC 3339 text (`Z`, an offset, or naive meaning UTC)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def period_start(period: str, at: datetime, zone: tzinfo = UTC) -> datetime:
    """The start (in UTC) of the hour or day containing `at`, where hours and days begin in `zone`."""
    local = at.astimezone(zone)
    if period == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = datetime.combine(local.date(), time(0), tzinfo=zone)
    return start.astimezone(UTC)


def period_end(period: str, start: datetime, zone: tzinfo = UTC) -> datetime:
    """The start (in UTC) of the hour or day after the one containing `start` (a day may have 23 or
    25 hours where `zone` changes its clocks)."""
    if period == "hour":
        return period_start("hour", start, zone) + timedelta(hours=1)
    following = start.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(following, time(0), tzinfo=zone).astimezone(UTC)


def server_now(connection: Redis) -> datetime:
    """The Redis server's clock (TIME), the one clock every process and host shares."""
    seconds, micros = connection.time()
    return datetime.fromtimestamp(int(seconds) + int(micros) / 1e6, UTC)
