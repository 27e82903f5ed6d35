"""Headers every response of the web app carries: no framing, no sniffing, no referrer, a strict CSP.

Pages show what learners and models wrote (the dashboard): the policy allows scripts, styles and
fetches from this origin only, so markup that slipped into a page still could not run (architecture §9).
"""

from __future__ import annotations

from flask import Flask, Response

#: No inline script or style, no eval, nothing from elsewhere; data: images for Bootstrap's icons.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def init_headers(app: Flask) -> None:
    """Send the security headers with every response of `app`."""

    @app.after_request
    def _harden(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response
