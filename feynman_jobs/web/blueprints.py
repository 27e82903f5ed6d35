"""What every API blueprint shares: the /api prefix, token auth and problem documents."""

from __future__ import annotations

from flask import Blueprint, Response

from feynman_jobs.web.auth import require_token
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import register_handlers


def api_blueprint(name: str, import_name: str, *, url_prefix: str = "/api") -> Blueprint:
    """A blueprint that requires a token when tokens are configured and answers errors as problems."""
    bp = Blueprint(name, import_name, url_prefix=url_prefix)
    register_handlers(bp)

    @bp.before_request
    def _authenticate() -> Response | None:
        return require_token(extension().settings)

    return bp
