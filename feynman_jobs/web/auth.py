"""Bearer-token auth for the API: required whenever FEYNMAN_API_TOKENS is set."""

from __future__ import annotations

import hmac

from flask import Response, request

from feynman_jobs.settings import Settings
from feynman_jobs.web.problems import problem


def token_is_valid(settings: Settings, presented: str) -> bool:
    """Constant-time comparison against every configured token."""
    candidate = presented.encode()
    matches = [
        hmac.compare_digest(candidate, token.get_secret_value().encode()) for token in settings.api_tokens
    ]
    return any(matches)


def require_token(settings: Settings) -> Response | None:
    """None when the request may pass; else a 401 problem. Never logs the token."""
    if not settings.api_tokens:
        return None
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and presented and token_is_valid(settings, presented.strip()):
        return None
    response = problem(
        401, "unauthorized", "Unauthorized", "send a valid token as `Authorization: Bearer <token>`"
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="feynman_jobs"'
    return response
