"""deliver_webhook: POST a job's status document, signed the Standard Webhooks way, until a 2xx.

Headers `webhook-id` (the delivery id, the same on every attempt: receivers deduplicate by it),
`webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,` + base64 of HMAC-SHA256 over
`<id>.<timestamp>.<body>` keyed with FEYNMAN_WEBHOOK_SECRET's decoded bytes). No redirects are
followed, no proxy from the environment is used, and every request has short timeouts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
from pydantic import SecretStr

from feynman_jobs.errors import JobNotFound, PermanentJobError, RetryableJobError
from feynman_jobs.jobs.context import connection, current_job, log_extra, settings
from feynman_jobs.lifecycle import deliveries
from feynman_jobs.lifecycle.status import get_status
from feynman_jobs.queueing.webhooks import host_allowed
from feynman_jobs.settings import webhook_key

logger = logging.getLogger(__name__)

#: Seconds to connect, and to send and hear back: a receiver should answer at once and work later.
CONNECT_TIMEOUT_S = 3.0
TIMEOUT_S = 10.0
#: RQ runs the end callback before it records the end; the delivery waits this long for that record.
END_RECORD_WAIT_S = 5.0


def sign(secret: SecretStr, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value (Standard Webhooks `v1`)."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(webhook_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def deliver_webhook(job_id: str, delivery_id: str, event: str, url: str) -> dict[str, Any]:
    """Send the status document of `job_id` to `url`; raise (RQ retries) unless the answer is a 2xx."""
    job, conn, config = current_job(), connection(), settings()
    final = not job.retries_left
    secret = config.webhook_secret
    if secret is None or not host_allowed(url, config.webhook_hosts):
        refused = "host not allowed"
        deliveries.record_attempt(conn, job_id, delivery_id, status=None, error=refused, final=True)
        raise PermanentJobError("the webhook's host is not in FEYNMAN_WEBHOOK_HOSTS (or no secret is set)")
    body = _document(conn, job_id, event, delivery_id)
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, delivery_id, timestamp, body),
    }
    timeout = httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        failure = type(exc).__name__
        deliveries.record_attempt(conn, job_id, delivery_id, status=None, error=failure, final=final)
        logger.info("webhook delivery id=%s got no answer (%s) %s", delivery_id, failure, log_extra(job))
        raise RetryableJobError(f"webhook delivery got no answer: {failure}") from None
    ok = 200 <= response.status_code < 300
    error = None if ok else f"HTTP {response.status_code}"
    record = deliveries.record_attempt(
        conn, job_id, delivery_id, status=response.status_code, error=error, final=final
    )
    logger.info("webhook delivery id=%s answered %s %s", delivery_id, response.status_code, log_extra(job))
    if not ok:
        raise RetryableJobError(f"webhook receiver answered {response.status_code}")
    attempts = record.attempts if record else 1
    return {"delivery_id": delivery_id, "status": response.status_code, "attempts": attempts}


def _document(conn: Any, job_id: str, event: str, delivery_id: str) -> bytes:
    """The job's status document as sent, once its end is recorded (or after END_RECORD_WAIT_S)."""
    deadline = time.monotonic() + END_RECORD_WAIT_S
    while True:
        try:
            document = get_status(conn, job_id)
        except JobNotFound:
            deliveries.record_attempt(conn, job_id, delivery_id, status=None, error="job expired", final=True)
            raise PermanentJobError(f"job {job_id} no longer exists") from None
        if document.status == event or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return json.dumps(document.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")).encode()
