"""Provider rate limits (requests and tokens per minute) that hold across every worker and host.

A moving window in Redis (the `limits` library's Lua scripts): no 60-second window ever holds more
than the limit. A call that meets the limit waits up to `max_wait_s`, then the job is held.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from feynman_jobs import keys
from feynman_jobs.errors import HoldJob, ProviderRateLimited
from feynman_jobs.providers.chat import CallKind
from feynman_jobs.settings import Settings

#: The window the limits are kept over: a minute plus a margin, because the provider counts a request
#: when it arrives, a moment after we counted it; without the margin, latency jitter let 9 requests
#: of an RPM of 8 land inside one of the provider's minutes.
WINDOW_S = 62
#: How long a model call waits for the window before its job is held and rescheduled instead.
MAX_WAIT_S = 20.0
#: The limiter namespace of each kind of call ("llm" for chat, as before embeddings had limits).
_NAMESPACES = {"chat": "llm", "embeddings": "embeddings"}


class ProviderLimiter:
    """RPM and TPM for one kind of provider call (chat or embeddings), shared through Redis."""

    def __init__(self, connection: Redis, settings: Settings, kind: CallKind = "chat") -> None:
        storage = RedisStorage(
            settings.redis_url,
            connection_pool=connection.connection_pool,
            key_prefix=keys.RATE_LIMIT_PREFIX,
        )
        self._connection = connection
        self._limiter = MovingWindowRateLimiter(storage)
        rpm, tpm = (
            (settings.llm_rpm, settings.llm_tpm)
            if kind == "chat"
            else (settings.embeddings_rpm, settings.embeddings_tpm)
        )
        self._namespace = _NAMESPACES[kind]
        self._backoff_key = keys.provider_backoff(self._namespace)
        self._rpm = RateLimitItemPerSecond(rpm, WINDOW_S) if rpm else None
        self._tpm = RateLimitItemPerSecond(tpm, WINDOW_S) if tpm else None

    @property
    def enabled(self) -> bool:
        """Whether any limit is configured."""
        return self._rpm is not None or self._tpm is not None

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
        if not self.enabled:
            return
        cost = max(1, min(tokens, self._tpm.amount if self._tpm else tokens))
        deadline = time.monotonic() + max_wait_s
        while True:
            if self._try(cost):
                return
            wait = self._seconds_until_free(cost)
            if time.monotonic() + wait > deadline:
                raise HoldJob(
                    f"provider rate limit reached (RPM {self._rpm}, TPM {self._tpm})", max(1.0, wait)
                )
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

    def _try(self, cost: int) -> bool:
        # Test both first so a request slot is rarely taken for a call the token window refuses.
        if self._rpm and not self._limiter.test(self._rpm, self._namespace, "requests"):
            return False
        if self._tpm and not self._limiter.test(self._tpm, self._namespace, "tokens", cost=cost):
            return False
        if self._rpm and not self._limiter.hit(self._rpm, self._namespace, "requests"):
            return False
        # A refused token hit leaves its request slot taken: the limit errs towards fewer calls.
        return not (self._tpm and not self._limiter.hit(self._tpm, self._namespace, "tokens", cost=cost))

    def _seconds_until_free(self, cost: int) -> float:
        waits = [0.0]
        now = time.time()
        for item, name in ((self._rpm, "requests"), (self._tpm, "tokens")):
            if item is not None:
                stats = self._limiter.get_window_stats(item, self._namespace, name)
                if stats.remaining < (cost if name == "tokens" else 1):
                    waits.append(stats.reset_time - now)
        return max(waits)
