"""The one gate every request passes: who is calling, and may they do this (architecture §9).

Each view declares who may call it — `@public` (health), `@clients` (what an API client does) —
and everything else is for operators, the dashboard included. With no token configured at all
(anonymous mode) only a request made on this machine is served: from a loopback address, to a
loopback host name, through no proxy. Ambient credentials — the dashboard's basic auth and
anonymous loopback access, which a browser supplies by itself — never change state for a request
the browser says another site sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Literal, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

from feynman_jobs.errors import CrossSiteRequest, FeynmanError, Forbidden, Unauthorized
from feynman_jobs.queueing.catalog import CLIENTS, OPERATORS, Audience
from feynman_jobs.settings import Settings
from feynman_jobs.web.auth import (
    BASIC_AUTH,
    LOOPBACK,
    Caller,
    basic_auth_is_valid,
    bearer_token,
    token_caller,
)
from feynman_jobs.web.extension import extension
from feynman_jobs.web.problems import from_error

Role = Literal["public", "client", "operator"]
View = TypeVar("View", bound=Callable[..., object])
_ROLE = "__feynman_access__"
#: Blueprints of the operator pages: the dashboard's basic auth opens these, and nothing else.
OPERATOR_PAGES = frozenset({"rq_dashboard", "feynman_dashboard", "feynman_costs_page"})
#: Methods that never change state (the service keeps it that way: no state change through GET).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Fetch metadata values of a request a page of this origin made, or a person typed.
SAME_ORIGIN_SITES = frozenset({"same-origin", "none"})

ANONYMOUS_REFUSED = (
    "without FEYNMAN_API_TOKENS (or FEYNMAN_ADMIN_TOKENS) this service answers only requests made on "
    "its own machine (a loopback address and host name, no proxy headers); set FEYNMAN_API_TOKENS "
    "and send `Authorization: Bearer <token>`"
)
TOKEN_REQUIRED = (
    "send a valid token as `Authorization: Bearer <token>` (one of FEYNMAN_API_TOKENS or "  # noqa: S105
    "FEYNMAN_ADMIN_TOKENS)"
)
LOGIN_REQUIRED = (
    "log in with FEYNMAN_DASHBOARD_USER and FEYNMAN_DASHBOARD_PASSWORD, or send an operator token as "
    "`Authorization: Bearer <token>`"
)


def public(view: View) -> View:
    """Anyone may call this view, with or without a credential (health checks)."""
    setattr(view, _ROLE, "public")
    return view


def clients(view: View) -> View:
    """Any valid credential may call this view (an API client's token, or an operator's)."""
    setattr(view, _ROLE, "client")
    return view


def init_access(app: Flask, *, blueprints: frozenset[str] | None = None) -> None:
    """Check every request of `app` — or, in a host app, only those of our `blueprints`."""

    @app.before_request
    def _gate() -> Response | None:
        if blueprints is not None and request.blueprint not in blueprints:
            return None
        settings = extension().settings
        try:
            g.feynman_caller = check(settings)
        except Unauthorized as exc:
            response = from_error(exc)
            response.headers["WWW-Authenticate"] = (
                'Basic realm="feynman_jobs dashboard"'
                if _basic_auth_applies(settings)
                else 'Bearer realm="feynman_jobs"'
            )
            return response
        except FeynmanError as exc:
            return from_error(exc)
        return None


def check(settings: Settings) -> Caller | None:
    """The caller, when the request may go on (None for a public view); raises Unauthorized, Forbidden."""
    role = required_role()
    if role == "public":
        return None
    caller = identify(settings)
    if role == "operator" and not caller.operator:
        raise Forbidden("this needs an operator credential: a token of FEYNMAN_ADMIN_TOKENS")
    if caller.ambient and request.method not in SAFE_METHODS and is_cross_site():
        raise CrossSiteRequest(
            "refused: the browser says another site sent this request, and its credential is one the "
            "browser supplies by itself (basic auth, or anonymous access on loopback); send a bearer token"
        )
    return caller


def required_role() -> Role:
    """What the matched view asks for; operator unless it says otherwise (an unknown URL: any caller)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is None:
        return "client"
    role: Role = getattr(view, _ROLE, "operator")
    return role


def identify(settings: Settings) -> Caller:
    """The credential the request carries, or anonymous loopback access; Unauthorized otherwise."""
    token = bearer_token()
    if token is not None and not settings.anonymous_mode:
        caller = token_caller(settings, token)
        if caller is None:
            raise Unauthorized(TOKEN_REQUIRED)
        return caller
    if _basic_auth_applies(settings):
        if basic_auth_is_valid(settings):
            return BASIC_AUTH
        raise Unauthorized(LOGIN_REQUIRED)
    if not settings.anonymous_mode:
        raise Unauthorized(TOKEN_REQUIRED)
    if not is_local_request():
        raise Unauthorized(ANONYMOUS_REFUSED)
    return LOOPBACK


def _basic_auth_applies(settings: Settings) -> bool:
    return bool(
        request.blueprint in OPERATOR_PAGES and settings.dashboard_user and settings.dashboard_password
    )


def is_local_request() -> bool:
    """Made on this machine: a loopback peer, a loopback Host, and no proxy said it forwarded it.

    The Host check keeps out DNS rebinding (a site's name resolving to 127.0.0.1); the proxy headers
    keep out everyone behind a reverse proxy on this host, whose peer is always loopback.
    """
    if any(_is_proxy_header(name) for name in request.headers.keys()):  # noqa: SIM118
        return False
    return _is_loopback_address(request.remote_addr) and _is_loopback_host(request.host)


def _is_proxy_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("forwarded", "x-real-ip") or lowered.startswith("x-forwarded-")


def _is_loopback_address(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def _is_loopback_host(host: str) -> bool:
    try:
        name = urlsplit("//" + host).hostname
    except ValueError:
        return False
    return name == "localhost" or _is_loopback_address(name)


def is_cross_site() -> bool:
    """The browser says another site sent the request: by fetch metadata, else by an Origin not ours."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site not in SAME_ORIGIN_SITES
    origin = request.headers.get("Origin")
    if origin is None:
        return False  # not a browser, or one that sends neither: nothing ambient to abuse
    return origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()


def current_caller() -> Caller:
    """The caller the gate let through (only inside a client or operator view)."""
    caller = g.get("feynman_caller")
    if not isinstance(caller, Caller):
        raise RuntimeError("no caller: the access gate did not run for this view")
    return caller


def job_audiences() -> frozenset[Audience]:
    """The job types the caller may enqueue: client types, plus operator types for an operator."""
    return OPERATORS if current_caller().operator else CLIENTS


def require_owner(owner: str | None, what: str) -> None:
    """Forbidden unless the caller is an operator or holds the credential that enqueued `what`."""
    caller = current_caller()
    if caller.operator or (owner is not None and owner == caller.owner):
        return
    raise Forbidden(
        f"{what} was enqueued with another credential: only that credential or an operator token "
        "(FEYNMAN_ADMIN_TOKENS) may cancel or requeue it"
    )
