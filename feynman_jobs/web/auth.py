"""Who is calling: bearer tokens and the dashboard's basic auth, compared in constant time, never logged.

A `Caller` says what a request's credential may do (architecture §9): an operator may do everything,
a client what the API offers clients; an ambient credential is one a browser sends by itself, so a
page on another site could make it act.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Literal

from flask import g, request
from pydantic import SecretStr

from feynman_jobs.settings import Settings

Via = Literal["admin-token", "api-token", "basic-auth", "loopback"]


@dataclass(frozen=True)
class Caller:
    """What a request's credential may do."""

    via: Via
    #: May pause, resume, set budgets and limits, requeue or cancel any job, open the dashboard.
    operator: bool
    #: The browser sends it by itself (basic auth, anonymous loopback): cross-site requests are refused.
    ambient: bool
    #: Fingerprint of the bearer token, kept in the meta of the jobs it enqueues (None when ambient).
    owner: str | None = None


#: Anonymous mode: a request from this machine, with no credential (architecture §9).
LOOPBACK = Caller(via="loopback", operator=True, ambient=True)
#: The dashboard's basic auth: an operator credential that browsers resend by themselves.
BASIC_AUTH = Caller(via="basic-auth", operator=True, ambient=True)


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None without one); parsed once per request."""
    if "feynman_bearer" not in g:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        g.feynman_bearer = presented.strip() if scheme.lower() == "bearer" and presented.strip() else None
    token: str | None = g.feynman_bearer
    return token


def fingerprint(token: str) -> str:
    """A short, one-way name for a token: stored with the jobs it enqueues, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _matches(presented: str, tokens: tuple[SecretStr, ...]) -> bool:
    """Constant-time comparison against every configured token (each is compared, match or not)."""
    candidate = presented.encode()
    matches = [hmac.compare_digest(candidate, token.get_secret_value().encode()) for token in tokens]
    return any(matches)


def token_caller(settings: Settings, presented: str) -> Caller | None:
    """The caller a bearer token stands for, or None when it is none of the configured tokens.

    Without FEYNMAN_ADMIN_TOKENS an API token keeps every power (as before operator tokens existed).
    """
    is_admin = _matches(presented, settings.admin_tokens)
    is_client = _matches(presented, settings.api_tokens)
    if is_admin:
        return Caller(via="admin-token", operator=True, ambient=False, owner=fingerprint(presented))
    if is_client:
        operator = not settings.admin_tokens
        return Caller(via="api-token", operator=operator, ambient=False, owner=fingerprint(presented))
    return None


def basic_auth_is_valid(settings: Settings) -> bool:
    """The request carries the dashboard's user and password (both compared every time)."""
    user, password = settings.dashboard_user, settings.dashboard_password
    auth = request.authorization
    if not (user and password) or auth is None or auth.type != "basic":
        return False
    # Compare both parts every time, so timing says nothing about which one was wrong.
    user_ok = hmac.compare_digest((auth.username or "").encode(), user.encode())
    password_ok = hmac.compare_digest((auth.password or "").encode(), password.get_secret_value().encode())
    return user_ok and password_ok
