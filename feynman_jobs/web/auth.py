"""Who is calling: bearer tokens, read once per request and compared in constant time."""

from __future__ import annotations

import hmac

from flask import Response, g, request

from feynman_jobs.settings import Settings
from feynman_jobs.web.problems import problem


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None without one); parsed once per request."""
    if "feynman_bearer" not in g:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        g.feynman_bearer = presented.strip() if scheme.lower() == "bearer" and presented.strip() else None
    token: str | None = g.feynman_bearer
    return token


def token_is_valid(settings: Settings, presented: str) -> bool:
    """Constant-time comparison against every configured token (each is compared, match or not)."""
    candidate = presented.encode()
    matches = [
        hmac.compare_digest(candidate, token.get_secret_value().encode()) for token in settings.api_tokens
    ]
    return any(matches)


def require_token(settings: Settings) -> Response | None:
    """None when the request may pass; else a 401 problem. Never logs the token."""
    if not settings.api_tokens:
        return None
    presented = bearer_token()
    if presented is not None and token_is_valid(settings, presented):
        return None
    response = problem(
        401, "unauthorized", "Unauthorized", "send a valid token as `Authorization: Bearer <token>`"
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="feynman_jobs"'
    return response
