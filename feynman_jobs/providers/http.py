"""HTTP to OpenAI-compatible endpoints: one client shape, one mapping of failures to errors.

What an answer means for the job (architecture §7): a 429 holds the job until the endpoint's
Retry-After (ProviderRateLimited, never a failure); timeouts, connection failures, 408, 409 and 5xx
are transient (RetryableJobError, retried by RQ with backoff); any other 4xx, or an answer that is not
a JSON object, is permanent (ProviderError: the job fails at once, its retries unused).
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import SecretStr

from feynman_jobs.errors import ProviderError, ProviderRateLimited, RetryableJobError
from feynman_jobs.providers.redact import error_summary
from feynman_jobs.providers.stepped import SteppedBackend

logger = logging.getLogger(__name__)

#: A Retry-After up to this many seconds is waited out in the job (once); a longer one holds the job
#: (429) or goes to RQ's backoff (5xx).
INLINE_RETRY_AFTER_MAX_S = 10.0
#: How long a 429 without a usable Retry-After holds the job.
DEFAULT_429_WAIT_S = 20.0
#: A Retry-After longer than this is taken as this (a misconfigured endpoint must not park jobs for days).
MAX_RETRY_AFTER_S = 3600.0
#: 4xx answers that say "try again" rather than "this request is wrong".
TRANSIENT_4XX = {408, 409}

T = TypeVar("T")


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's own TLS context (its CA bundle, SSL_CERT_FILE honoured), built once per process: httpx
    builds one per client by loading the whole bundle, ~0.25 s of CPU holding the GIL for every job,
    which capped a worker's slots at ~2 jobs/s (bench/concurrency.py)."""
    return httpx.create_ssl_context()


def client(base_url: str, api_key: SecretStr | None, timeout_s: float) -> httpx.Client:
    """An httpx client for one endpoint; the key goes in a header httpx never logs."""
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
    transport = httpx.HTTPTransport(verify=tls_context())
    # rq-compat(httpx==0.28.1): HTTPTransport takes no network backend; its pool
    # (httpcore's public ConnectionPool) keeps the one it uses here (tests/unit/test_stepped_reads.py).
    transport._pool._network_backend = SteppedBackend()
    return httpx.Client(
        base_url=base_url, headers=headers, timeout=timeout, verify=tls_context(), transport=transport
    )


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (delta-seconds or an HTTP date), capped; None if absent."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def post_json(http: httpx.Client, path: str, body: dict[str, Any], *, what: str) -> dict[str, Any]:
    """POST a JSON body once and return the JSON answer, or raise what the failure means for the job."""
    try:
        response = http.post(path, json=body)
    except httpx.TimeoutException:
        raise RetryableJobError(f"{what}: no answer within {http.timeout.read}s") from None
    except httpx.TransportError as exc:
        raise RetryableJobError(f"{what}: cannot reach the endpoint ({type(exc).__name__})") from None
    status = response.status_code
    text = error_summary(response)
    wait = retry_after_s(response)
    hint = f" (Retry-After {wait:g}s)" if wait is not None else ""
    if status == 429:
        raise ProviderRateLimited(
            f"{what}: HTTP 429, rate limited{hint}: {text}", DEFAULT_429_WAIT_S if wait is None else wait
        )
    if status >= 500 or status in TRANSIENT_4XX:
        raise RetryableJobError(f"{what}: HTTP {status}{hint}: {text}", retry_after_s=wait)
    if status >= 400:
        raise ProviderError(f"{what}: HTTP {status}: {text}")
    try:
        data = response.json()
    except ValueError:
        raise ProviderError(f"{what}: the answer is not JSON: {text}") from None
    if not isinstance(data, dict):
        raise ProviderError(f"{what}: the answer is not a JSON object")
    return data


def with_inline_retry(call: Callable[[], T], *, what: str) -> T:
    """Run `call`; if the endpoint asked for a short wait (a Retry-After up to INLINE_RETRY_AFTER_MAX_S),
    wait it out and run `call` once more. `call` should take its own budget and rate-limit guard, so
    the second try is checked again like any other call."""
    try:
        return call()
    except (RetryableJobError, ProviderRateLimited) as exc:
        wait = exc.retry_after_s
        if wait is None or wait > INLINE_RETRY_AFTER_MAX_S:
            raise
        logger.warning("%s: waiting %.1fs as the endpoint asked, then trying once more", what, wait)
        time.sleep(wait)
    return call()
