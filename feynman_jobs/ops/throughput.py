"""Throughput, wait and run percentiles and success rate over a window, by job type and queue."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from redis import Redis

from feynman_jobs.clock import server_now
from feynman_jobs.lifecycle import outcomes

#: Longest window a caller may ask for (the event stream is capped anyway).
MAX_WINDOW_S = 7 * 24 * 3600
#: The window when the caller names none: the last hour.
DEFAULT_WINDOW_S = 3600


class StatsQuery(BaseModel):
    """The window of GET /api/stats, in seconds (default one hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Annotated[int, Field(ge=1, le=MAX_WINDOW_S)] = DEFAULT_WINDOW_S


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return round(ordered[rank - 1], 6)


def _summarize(events: list[dict[str, Any]], window_s: int) -> dict[str, Any]:
    counts = {outcome: 0 for outcome in outcomes.OUTCOMES}
    for event in events:
        counts[event["outcome"]] = counts.get(event["outcome"], 0) + 1
    waits = [event["wait_s"] for event in events if "wait_s" in event]
    runs = [event["run_s"] for event in events if "run_s" in event]
    ended = counts["finished"] + counts["failed"] + counts["stopped"]
    return {
        **counts,
        "throughput_per_min": round(counts["finished"] * 60 / window_s, 4),
        "success_rate": round(counts["finished"] / ended, 4) if ended else None,
        "wait_s": {"p50": percentile(waits, 0.5), "p95": percentile(waits, 0.95)},
        "run_s": {"p50": percentile(runs, 0.5), "p95": percentile(runs, 0.95)},
    }


def window_stats(connection: Redis, window_s: int) -> dict[str, Any]:
    """Stats of every attempt that ended in the last `window_s` seconds (Redis server clock)."""
    now_ms = int(server_now(connection).timestamp() * 1000)
    events = outcomes.events_since(connection, now_ms - window_s * 1000)
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_queue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_type[event["type"]].append(event)
        by_queue[event["queue"]].append(event)
    return {
        "window_s": window_s,
        "total": _summarize(events, window_s),
        "by_type": {name: _summarize(group, window_s) for name, group in sorted(by_type.items())},
        "by_queue": {name: _summarize(group, window_s) for name, group in sorted(by_queue.items())},
    }
