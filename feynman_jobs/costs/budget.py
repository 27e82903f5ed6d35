"""Budgets in USD (total, daily, hourly), enforced at enqueue against estimates and at run time.

Two pools of money count against a budget besides what was spent: `reserved` — estimates of jobs
accepted but not yet ended — checked at enqueue; and `inflight` — estimates of model calls under
way — checked before each call. Both are taken and given back atomically by Lua, so concurrent
enqueues or workers cannot all slip under the same limit. Each reservation has a deadline on the Redis
server's clock and stops counting when it passes; costs/reservations.py moves the deadlines of the
ones still needed and gives back the rest (architecture §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from redis import Redis

from feynman_jobs import keys
from feynman_jobs.clock import period_end, server_now, utc_iso
from feynman_jobs.costs import control, ledger
from feynman_jobs.errors import BudgetExceeded
from feynman_jobs.settings import Settings

RESERVED = keys.BUDGET_RESERVED
INFLIGHT = keys.BUDGET_INFLIGHT
Pool = tuple[str, str, str]
#: A job held by the total budget (which never resets) looks again after this long.
TOTAL_RECHECK_S = 3600

# Every reservation carries a deadline on the Redis server's clock (TIME) and counts only until then,
# so one whose holder vanished (a killed work horse, a lost web process) cannot hold money for good.
# Forgets the lapsed ones of a pool (KEYS[1] hash, KEYS[2] total, KEYS[3] deadlines); returns now.
_LAPSE = """
local function lapse(members, total, deadlines)
  local now = tonumber(redis.call('TIME')[1])
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
    local amount = redis.call('HGET', members, member)
    if amount then
      redis.call('HDEL', members, member)
      redis.call('DECRBY', total, amount)
    end
    redis.call('ZREM', deadlines, member)
  end
  return now
end
"""
# KEYS: the pool's three keys, spend keys...; ARGV: member, amount, seconds to live, limits... (-1 = no
# limit). Returns 0 when reserved (or already held: then its deadline moves), else the 1-based index of
# the first budget it would exceed.
_RESERVE = (
    _LAPSE
    + """
local now = lapse(KEYS[1], KEYS[2], KEYS[3])
local amount = tonumber(ARGV[2])
local deadline = now + tonumber(ARGV[3])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('ZADD', KEYS[3], deadline, ARGV[1])
  return 0
end
local pooled = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 4, #KEYS do
  local limit = tonumber(ARGV[i])
  if limit >= 0 then
    local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
    if spent + pooled + amount > limit then return i - 3 end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], amount)
redis.call('INCRBY', KEYS[2], amount)
redis.call('ZADD', KEYS[3], deadline, ARGV[1])
return 0
"""
)
_RELEASE = """
redis.call('ZREM', KEYS[3], ARGV[1])
local amount = redis.call('HGET', KEYS[1], ARGV[1])
if not amount then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DECRBY', KEYS[2], amount)
return tonumber(amount)
"""
# The money a pool holds now: its total less what has lapsed (read-only).
_LIVE = """
local now = tonumber(redis.call('TIME')[1])
local total = tonumber(redis.call('GET', KEYS[2]) or '0')
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
  total = total - tonumber(redis.call('HGET', KEYS[1], member) or '0')
end
return total
"""
# ARGV: seconds to live, members... Moves the deadline of each member still held (reconcile).
_EXTEND = """
local now = tonumber(redis.call('TIME')[1])
local extended = 0
for i = 2, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then
    redis.call('ZADD', KEYS[3], now + tonumber(ARGV[1]), ARGV[i])
    extended = extended + 1
  end
end
return extended
"""


@dataclass(frozen=True)
class BudgetWindow:
    """One configured budget: its limit, what counts against it, and when it resets."""

    name: str
    limit_micros: int
    spent_micros: int
    reserved_micros: int
    resets_at: datetime | None
    #: When it was read, by the Redis server's clock (windows are the server's: a worker host's clock
    #: an hour ahead counted its spend in the next hour's window).
    read_at: datetime | None = None

    @property
    def remaining_micros(self) -> int:
        """What may still be committed (never negative)."""
        return max(0, self.limit_micros - self.spent_micros - self.reserved_micros)

    def as_dict(self) -> dict[str, Any]:
        """The window as the API shows it, in USD."""
        return {
            "budget": self.name,
            "limit_usd": self.limit_micros / 1e6,
            "spent_usd": self.spent_micros / 1e6,
            "reserved_usd": self.reserved_micros / 1e6,
            "remaining_usd": self.remaining_micros / 1e6,
            "resets_at": utc_iso(self.resets_at) if self.resets_at else None,
        }

    def exceeded(self, needed_micros: int) -> BudgetExceeded:
        """The error saying that `needed_micros` more does not fit this budget."""
        if self.resets_at is None:
            retry_after_s = TOTAL_RECHECK_S
        else:
            read_at = self.read_at or datetime.now(UTC)
            retry_after_s = max(1, int((self.resets_at - read_at).total_seconds()) + 1)
        return BudgetExceeded(
            f"the {self.name} budget of ${self.limit_micros / 1e6:.6f} would be exceeded: "
            f"${self.remaining_micros / 1e6:.6f} left, this needs ${needed_micros / 1e6:.6f}",
            budget=self.as_dict(),
            needed_micros=needed_micros,
            retry_after_s=retry_after_s,
        )


def configured(connection: Redis, settings: Settings) -> bool:
    """Whether any budget is in force (set in the environment or at run time)."""
    return any(limit is not None for limit in _limits(connection, settings).values())


def _limits(connection: Redis, settings: Settings) -> dict[str, float | None]:
    return {name: item.value for name, item in control.budgets(connection, settings).items()}


def _resets(name: str, now: datetime, zone: tzinfo) -> datetime | None:
    if name == "daily":
        return period_end("day", now, zone)
    if name == "hourly":
        return period_end("hour", now, zone)
    return None


def held(connection: Redis, pool: Pool = RESERVED) -> int:
    """The micros `pool` holds now: only reservations whose deadline has not passed count."""
    return int(connection.eval(_LIVE, 3, *pool))


def windows(connection: Redis, settings: Settings, *, pool: Pool = RESERVED) -> list[BudgetWindow]:
    """Every configured budget with its current spend and the money held in `pool`."""
    now = server_now(connection)
    keys = ledger.spend_keys(now, settings.zone)
    configured = {name: limit for name, limit in _limits(connection, settings).items() if limit is not None}
    if not configured:
        return []
    values = connection.mget([keys[name] for name in configured])
    pooled = held(connection, pool)
    return [
        BudgetWindow(
            name, round(limit * 1e6), int(spent or 0), pooled, _resets(name, now, settings.zone), read_at=now
        )
        for (name, limit), spent in zip(configured.items(), values, strict=True)
    ]


def reserve(
    connection: Redis,
    settings: Settings,
    member: str,
    amount_micros: int,
    *,
    ttl_s: int,
    pool: Pool = RESERVED,
) -> None:
    """Hold `amount_micros` for `member` for `ttl_s` seconds if every budget allows it, else raise
    BudgetExceeded. Holding the same member again only moves its deadline."""
    limits = _limits(connection, settings)
    if all(limit is None for limit in limits.values()):
        return
    keys = ledger.spend_keys(server_now(connection), settings.zone)
    names = list(limits)
    args = [member, amount_micros, max(1, ttl_s)]
    args += [-1 if limits[n] is None else round(limits[n] * 1e6) for n in names]  # type: ignore[operator]
    failed = int(connection.eval(_RESERVE, 3 + len(names), *pool, *[keys[n] for n in names], *args))  # type: ignore[arg-type]
    if failed:
        window = next(w for w in windows(connection, settings, pool=pool) if w.name == names[failed - 1])
        raise window.exceeded(amount_micros)


def release(connection: Redis, member: str, *, pool: Pool = RESERVED) -> int:
    """Give back what `member` held (idempotent); returns the amount released."""
    return int(connection.eval(_RELEASE, 3, *pool, member))


def members(connection: Redis, pool: Pool = RESERVED) -> list[str]:
    """Every member `pool` holds money for (lapsed ones included until the next reserve forgets them)."""
    return [member.decode() for member in connection.hkeys(pool[0])]  # type: ignore[union-attr]


def extend(connection: Redis, ttl_s: int, held_members: list[str], *, pool: Pool = RESERVED) -> int:
    """Move the deadline of members still held to `ttl_s` seconds from now (server time)."""
    if not held_members:
        return 0
    return int(connection.eval(_EXTEND, 3, *pool, max(1, ttl_s), *held_members))
