"""HTTP to OpenAI-compatible endpoints: one client shape, one mapping of failures to retryable errors."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from pydantic import SecretStr

from feynman_jobs.errors import ProviderError, RetryableJobError
from feynman_jobs.providers.redact import error_summary

logger = logging.getLogger(__name__)

#: A Retry-After up to this many seconds is waited out in the job (once); a longer one goes to RQ's backoff.
INLINE_RETRY_AFTER_MAX_S = 10.0


def client(base_url: str, api_key: SecretStr | None, timeout_s: float) -> httpx.Client:
    """An httpx client for one endpoint; the key goes in a header httpx never logs."""
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {api_key.get_secret_value()}"
    timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def retry_after_s(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds when it is a number (an HTTP date is left to RQ's backoff)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def post_json(http: httpx.Client, path: str, body: dict[str, Any], *, what: str) -> dict[str, Any]:
    """POST a JSON body and return the JSON answer.

    Timeouts, connection failures, 429 and 5xx raise RetryableJobError (RQ retries with backoff); a
    short Retry-After is honoured once in place. Other 4xx and non-JSON answers raise ProviderError.
    """
    for attempt in (1, 2):
        try:
            response = http.post(path, json=body)
        except httpx.TimeoutException:
            raise RetryableJobError(f"{what}: no answer within {http.timeout.read}s") from None
        except httpx.TransportError as exc:
            raise RetryableJobError(f"{what}: cannot reach the endpoint ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_s(response)
            if attempt == 1 and wait is not None and wait <= INLINE_RETRY_AFTER_MAX_S:
                logger.warning("%s: HTTP %d, retrying after %.1fs as the endpoint asked", what, status, wait)
                time.sleep(wait)
                continue
            hint = f" (Retry-After {wait:g}s)" if wait is not None else ""
            raise RetryableJobError(f"{what}: HTTP {status}{hint}: {error_summary(response)}")
        if status >= 400:
            raise ProviderError(f"{what}: HTTP {status}: {error_summary(response)}")
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(f"{what}: the answer is not JSON: {error_summary(response)}") from None
        if not isinstance(data, dict):
            raise ProviderError(f"{what}: the answer is not a JSON object")
        return data
    raise AssertionError("unreachable: the second attempt returns or raises")
