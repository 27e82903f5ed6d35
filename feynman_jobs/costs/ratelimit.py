"""Provider rate limits (requests per minute and per hour, tokens per minute) that hold across every
worker, web process and host, for chat and for embeddings calls separately.

Each limit is a sliding window kept as a fixed number of buckets in one Redis hash (bucket index ->
count), checked and taken for every limit of a call at once by one Lua script on the Redis server's
clock. A call counts for at least the whole window (and at most one bucket longer), so no span of the
window ever holds more than the limit; memory is one hash of at most BUCKETS_PER_WINDOW + 1 fields per
limit, whatever the limit (the moving window it replaces kept one list element per token). A call that
meets a limit waits up to `max_wait_s`, then its job is held (architecture §6).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.clock import utc_iso
from feynman_jobs.costs import control
from feynman_jobs.errors import HoldJob, ProviderRateLimited
from feynman_jobs.providers.chat import CallKind
from feynman_jobs.settings import Settings

#: The span a per-minute limit is kept over: a minute plus a margin, because the provider counts a
#: request when it arrives, a moment after we counted it; without the margin, latency jitter let 9
#: requests of an RPM of 8 land inside one of the provider's minutes.
WINDOW_S = 62
#: The same margin on a per-hour limit.
HOUR_WINDOW_S = 3602
#: The window and bucket of each limit, in seconds: finer buckets free room sooner, coarser ones
#: keep fewer fields.
WINDOWS: dict[str, tuple[int, int]] = {"rpm": (WINDOW_S, 1), "tpm": (WINDOW_S, 1), "rph": (HOUR_WINDOW_S, 60)}
#: How long a model call waits for the window before its job is held and rescheduled instead.
MAX_WAIT_S = 20.0
#: The Redis namespace of each kind of call ("llm" for chat, as before embeddings had limits).
NAMESPACES: dict[CallKind, str] = {"chat": "llm", "embeddings": "embeddings"}

# KEYS: one hash per limit. ARGV: per limit, limit, bucket ms, buckets, cost. Forgets buckets that left
# the window; if every limit has room, adds the cost to the current bucket of each and returns 0, else
# returns the milliseconds until the tightest one has room (taking nothing).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
for i, key in ipairs(KEYS) do
  local limit, bucket = tonumber(ARGV[4 * i - 3]), tonumber(ARGV[4 * i - 2])
  local buckets, cost = tonumber(ARGV[4 * i - 1]), tonumber(ARGV[4 * i])
  local current = math.floor(now / bucket)
  local fields = redis.call('HGETALL', key)
  local used, live = 0, {}
  for j = 1, #fields, 2 do
    local index, count = tonumber(fields[j]), tonumber(fields[j + 1])
    if index <= current - buckets then
      redis.call('HDEL', key, fields[j])
    else
      used = used + count
      live[#live + 1] = {index, count}
    end
  end
  if used + cost > limit then
    table.sort(live, function(a, b) return a[1] < b[1] end)
    local needed, freed, until_free = used + cost - limit, 0, buckets * bucket
    for _, entry in ipairs(live) do
      freed = freed + entry[2]
      if freed >= needed then
        until_free = (entry[1] + buckets) * bucket - now
        break
      end
    end
    wait = math.max(wait, until_free, 1)
  end
end
if wait > 0 then return wait end
for i, key in ipairs(KEYS) do
  local bucket, buckets = tonumber(ARGV[4 * i - 2]), tonumber(ARGV[4 * i - 1])
  redis.call('HINCRBY', key, string.format('%d', math.floor(now / bucket)), tonumber(ARGV[4 * i]))
  redis.call('PEXPIRE', key, (buckets + 1) * bucket)
end
return 0
"""
# KEYS: one hash per limit; ARGV: per limit, bucket ms, buckets. Returns the server time (ms) and, per
# limit, what the window holds and the ms until its oldest bucket leaves (0: empty). Read-only.
_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {now}
for i, key in ipairs(KEYS) do
  local bucket, buckets = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local current = math.floor(now / bucket)
  local fields = redis.call('HGETALL', key)
  local used, oldest = 0, nil
  for j = 1, #fields, 2 do
    local index = tonumber(fields[j])
    if index > current - buckets then
      used = used + tonumber(fields[j + 1])
      if oldest == nil or index < oldest then oldest = index end
    end
  end
  out[#out + 1] = used
  out[#out + 1] = oldest and ((oldest + buckets) * bucket - now) or 0
end
return out
"""


@dataclass(frozen=True)
class Window:
    """One rate limit's window: its key, length and buckets."""

    key: str
    bucket_ms: int
    buckets: int

    @classmethod
    def of(cls, kind: CallKind, name: str) -> Window:
        """The window of limit `name` (rpm, tpm, rph) of `kind` calls."""
        window_s, bucket_s = WINDOWS[name]
        # A call in bucket b counts while the current bucket is below b + buckets: at least window_s.
        return cls(
            keys.rate_window(NAMESPACES[kind], name), bucket_s * 1000, 1 + math.ceil(window_s / bucket_s)
        )


def _configured(connection: Redis, settings: Settings, kind: CallKind) -> dict[str, int]:
    in_force = control.limits(connection, settings)
    return {
        name: int(item.value)
        for name in control.LIMITS
        if (item := in_force[f"{kind}.{name}"]).value is not None
    }


class ProviderLimiter:
    """RPM, TPM and RPH for one kind of provider call (chat or embeddings), shared through Redis; the
    limits in force are read on every call (PUT /api/limits applies at once)."""

    def __init__(self, connection: Redis, settings: Settings, kind: CallKind = "chat") -> None:
        self._connection = connection
        self._settings = settings
        self._kind = kind
        self._backoff_key = keys.provider_backoff(NAMESPACES[kind])

    def acquire(self, tokens: int, *, max_wait_s: float = MAX_WAIT_S) -> None:
        """Take one request and `tokens` tokens from the windows, waiting; HoldJob after `max_wait_s`.

        While the provider itself has asked every caller to wait (`provider_said_wait`), wait that out
        too, or hold the job if it is longer than `max_wait_s`.
        """
        backoff_ms = int(self._connection.pttl(self._backoff_key))
        if backoff_ms > 0:
            if backoff_ms / 1000 > max_wait_s:
                raise ProviderRateLimited(
                    "the provider asked every caller to wait (HTTP 429)", math.ceil(backoff_ms / 1000)
                )
            time.sleep(backoff_ms / 1000)
        limits = _configured(self._connection, self._settings, self._kind)
        if not limits:
            return
        windows = {name: Window.of(self._kind, name) for name in limits}
        args: list[int] = []
        for name, limit in limits.items():
            cost = max(1, min(tokens, limit)) if name == "tpm" else 1
            args += [limit, windows[name].bucket_ms, windows[name].buckets, cost]
        deadline = time.monotonic() + max_wait_s
        while True:
            wait_ms = int(
                self._connection.eval(_ACQUIRE, len(windows), *[w.key for w in windows.values()], *args)
            )
            if wait_ms <= 0:
                return
            wait = wait_ms / 1000
            if time.monotonic() + wait > deadline:
                shown = ", ".join(f"{name.upper()} {limit}" for name, limit in limits.items())
                raise HoldJob(f"{self._kind} rate limit reached ({shown})", max(1.0, wait))
            time.sleep(min(max(wait, 0.05), 1.0))

    def provider_said_wait(self, seconds: float) -> None:
        """The provider answered 429 with this Retry-After: every worker waits it out before its next call."""
        if seconds > 0:
            # Only ever lengthened: a shorter Retry-After seen later does not cut an earlier one short.
            wait_ms = max(1, int(seconds * 1000))
            with self._connection.pipeline(transaction=True) as pipe:
                pipe.set(self._backoff_key, 1, px=wait_ms, nx=True)
                pipe.pexpire(self._backoff_key, wait_ms, gt=True)
                pipe.execute()


def usage(connection: Redis, settings: Settings) -> dict[str, dict[str, dict[str, Any]]]:
    """Every rate limit by kind and name: the limit in force and its source, what the window holds now
    and when its oldest call leaves it (`frees_at`, on the Redis server's clock)."""
    in_force = control.limits(connection, settings)
    names = [(kind, name) for kind in control.KINDS for name in control.LIMITS]
    windows = [Window.of(kind, name) for kind, name in names]
    args = [value for w in windows for value in (w.bucket_ms, w.buckets)]
    now_ms, *figures = connection.eval(_USAGE, len(windows), *[w.key for w in windows], *args)
    now = datetime.fromtimestamp(int(now_ms) / 1000, UTC)
    out: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in control.KINDS}
    for index, (kind, name) in enumerate(names):
        used, frees_in_ms = int(figures[2 * index]), int(figures[2 * index + 1])
        item = in_force[f"{kind}.{name}"]
        out[kind][name] = {
            "limit": None if item.value is None else int(item.value),
            **item.as_dict(),
            "window_s": WINDOWS[name][0],
            "used": used,
            "frees_at": utc_iso(now + timedelta(milliseconds=frees_in_ms)) if frees_in_ms else None,
        }
    return out
