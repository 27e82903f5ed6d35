"""All-time outcome counts and run/wait histograms, folded from the outcome event stream.

A job's outcome callback writes one event to the capped stream (lifecycle/outcomes.record) and nothing
else. Whoever reads the totals (`/metrics`) folds first, and the scheduler's upkeep folds every tick, so
the stream is folded long before it is trimmed (its cap is about 100,000 events: at one tick every 5 s,
20,000 jobs a second). A fold is one Lua step: it reads the events after a cursor kept in Redis, adds
them to the counters and histograms and moves the cursor, so any number of processes may fold at once
and every event is counted once; the totals only ever grow, as Prometheus counters must.

Only events marked `tally` are folded: events written before this rule were counted by their writers.
"""

from __future__ import annotations

import math
from typing import Any

from redis import Redis

from feynman_jobs import keys

#: Histogram bucket upper bounds in seconds (Prometheus `le`).
BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, math.inf)
#: The field that marks an event as counted by the fold (not by its writer).
MARK = "tally"
#: Events folded per Lua step, so that no step blocks Redis for long.
STEP = 2000


def bucket_label(bound: float) -> str:
    """The Prometheus `le` label of a bucket bound."""
    return "+Inf" if math.isinf(bound) else repr(float(bound))


# KEYS: event stream, cursor, counts hash, run histogram, wait histogram.
# ARGV: events per step, the MARK field, then the bucket labels in order (the last is +Inf).
# Returns how many events it read (marked or not).
_FOLD = """
local cursor = redis.call('GET', KEYS[2]) or '0-0'
local entries = redis.call('XRANGE', KEYS[1], '(' .. cursor, '+', 'COUNT', tonumber(ARGV[1]))
if #entries == 0 then return 0 end
local adds = {{}, {}, {}}
local sums = {{}, {}, {}}
local function add(t, field, n) t[field] = (t[field] or 0) + n end
local function bucket(value)
  for i = 3, #ARGV do
    if ARGV[i] == '+Inf' or value <= tonumber(ARGV[i]) then return ARGV[i] end
  end
end
for _, item in ipairs(entries) do
  local f, raw = {}, item[2]
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  if f[ARGV[2]] then
    local series = f['type'] .. '|' .. f['queue']
    add(adds[1], series .. '|' .. f['outcome'], 1)
    for i, name in ipairs({'run_s', 'wait_s'}) do
      local value = tonumber(f[name])
      if value then
        add(adds[i + 1], series .. '|' .. bucket(value), 1)
        add(sums[i + 1], series .. '|sum', value)
      end
    end
  end
end
for i = 1, 3 do
  for field, n in pairs(adds[i]) do redis.call('HINCRBY', KEYS[i + 2], field, n) end
  for field, value in pairs(sums[i]) do
    redis.call('HINCRBYFLOAT', KEYS[i + 2], field, string.format('%.17g', value))
  end
end
redis.call('SET', KEYS[2], entries[#entries][1])
return #entries
"""


def fold(connection: Redis) -> int:
    """Add every event not yet folded to the totals; returns how many events it read."""
    labels = [bucket_label(bound) for bound in BUCKETS]
    read = 0
    while True:
        step: Any = connection.eval(
            _FOLD,
            5,
            keys.OUTCOME_EVENTS,
            keys.OUTCOMES_FOLDED,
            keys.OUTCOME_COUNTS,
            keys.RUN_HISTOGRAM,
            keys.WAIT_HISTOGRAM,
            STEP,
            MARK,
            *labels,
        )
        read += int(step)
        if int(step) < STEP:
            return read
