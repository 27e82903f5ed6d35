"""Jobs the benchmarks run: the same functions on both sides of every comparison."""

from __future__ import annotations

import time


def noop() -> None:
    """Nothing: what is left is the queue's own cost."""


def sleep_50ms() -> None:
    """A short job of fixed length."""
    time.sleep(0.05)
