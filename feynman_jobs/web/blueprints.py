"""What every API blueprint shares: the /api prefix, JSON-only bodies and problem documents.

Who may call each route is decided once for the whole app, by the gate in web/access.py.
"""

from __future__ import annotations

from flask import Blueprint

from feynman_jobs.web.parsing import require_json_or_no_body
from feynman_jobs.web.problems import register_handlers


def api_blueprint(name: str, import_name: str, *, url_prefix: str = "/api") -> Blueprint:
    """A blueprint whose state-changing requests send JSON or no body, and whose errors are problems."""
    bp = Blueprint(name, import_name, url_prefix=url_prefix)
    register_handlers(bp)
    bp.before_request(require_json_or_no_body)
    return bp
