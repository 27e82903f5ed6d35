"""Which webhook URLs a job may carry: only hosts in FEYNMAN_WEBHOOK_HOSTS, and only with a secret set.

Checked at enqueue (a 422 naming the field) and again by the delivery job before it sends anything,
so a host taken off the list stops receiving at once (architecture §3).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.queueing.requests import Webhook
from feynman_jobs.settings import Settings


def host_allowed(url: str, hosts: tuple[str, ...]) -> bool:
    """Whether `url`'s host (or host:port) is one of `hosts` (lower-case names or addresses)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    return host in hosts or (port is not None and f"{host}:{port}" in hosts)


def webhook_meta(webhook: Webhook, settings: Settings, pointer: str = "") -> dict[str, Any]:
    """The webhook as kept in the job's meta; InvalidRequest when webhooks are off or its host not allowed."""
    if settings.webhook_secret is None:
        raise InvalidRequest(
            "webhooks are not enabled on this service",
            [FieldError(f"#{pointer}/webhook", "FEYNMAN_WEBHOOK_SECRET is not set")],
        )
    if not host_allowed(webhook.url, settings.webhook_hosts):
        allowed = ", ".join(settings.webhook_hosts) or "none"
        raise InvalidRequest(
            "the webhook URL's host is not allowed",
            [FieldError(f"#{pointer}/webhook/url", f"host must be one of FEYNMAN_WEBHOOK_HOSTS: {allowed}")],
        )
    return {"url": webhook.url, "events": list(dict.fromkeys(webhook.events))}
