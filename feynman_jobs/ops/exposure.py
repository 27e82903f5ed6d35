"""`feynman-jobs doctor`'s security checks: how the Redis keeps jobs, who can reach it, who can reach us.

Read-only. A Redis that refuses CONFIG (an ACL user without the right, or the command renamed away)
is reported as unknown, not as a crash (architecture §9).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from redis import Redis
from redis.exceptions import ResponseError

from feynman_jobs.ops.findings import Finding
from feynman_jobs.settings import Settings


def check_access(settings: Settings) -> Finding:
    """Anonymous mode is a warning: fine on a laptop, never on a host others can reach."""
    if settings.anonymous_mode:
        return Finding(
            "access",
            False,
            "anonymous mode: no FEYNMAN_API_TOKENS or FEYNMAN_ADMIN_TOKENS, so the web process serves "
            "only requests made on its own machine; set tokens before other hosts use it",
            severity="warn",
        )
    return Finding(
        "access",
        True,
        f"{len(settings.api_tokens)} client token(s), {len(settings.admin_tokens)} operator token(s)",
    )


def check_redis_config(connection: Redis, redis_url: str) -> list[Finding]:
    """Append-only persistence on, nothing evicted, and no password-less Redis beyond loopback."""
    try:
        config = {
            name: _config(connection, name)
            for name in (
                "appendonly",
                "appendfsync",
                "maxmemory-policy",
                "maxmemory",
                "bind",
                "protected-mode",
            )
        }
    except ResponseError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        findings = [
            Finding(
                "redis-config",
                False,
                f"CONFIG GET was refused ({reason}): check yourself that appendonly is yes, "
                "maxmemory-policy is noeviction and the Redis needs a password beyond loopback",
                severity="warn",
            )
        ]
        if _reached_openly(redis_url):
            findings.append(_open_beyond_loopback(f"this process reached {_host(redis_url)} without one"))
        return findings
    return [_persistence(config), _eviction(config), _exposure(connection, config, redis_url)]


def _config(connection: Redis, name: str) -> str:
    value = connection.config_get(name).get(name, "")
    return str(value)


def _persistence(config: dict[str, str]) -> Finding:
    if config["appendonly"] == "yes":
        return Finding("redis-persistence", True, f"append-only (appendfsync {config['appendfsync']})")
    return Finding(
        "redis-persistence",
        False,
        "append-only persistence is off (appendonly no): a restart of Redis loses every job accepted "
        "since its last snapshot; set appendonly yes",
    )


def _eviction(config: dict[str, str]) -> Finding:
    policy = config["maxmemory-policy"]
    if policy == "noeviction":
        return Finding("redis-eviction", True, "maxmemory-policy noeviction: a full Redis refuses writes")
    return Finding(
        "redis-eviction",
        False,
        f"maxmemory-policy is {policy} (maxmemory {config['maxmemory']}): a full Redis deletes keys, "
        "jobs among them; set noeviction",
    )


def _exposure(connection: Redis, config: dict[str, str], redis_url: str) -> Finding:
    if not _default_user_is_open(connection):
        return Finding("redis-access", True, "clients must authenticate (password or ACL user)")
    bound = [address.lstrip("-") for address in config["bind"].split()]
    if bound and all(_is_loopback(address) for address in bound) and not _reached_openly(redis_url):
        return Finding(
            "redis-access", True, f"no password, but it listens on loopback only ({config['bind']})"
        )
    version = str(connection.info("server").get("redis_version", "0"))
    if config["protected-mode"] == "yes" and int(version.split(".")[0]) >= 7:
        # Redis 7 refuses every client beyond loopback while the default user has no password.
        return Finding(
            "redis-access", True, "no password, but protected mode refuses clients beyond loopback"
        )
    return _open_beyond_loopback(f"bind {config['bind']}, protected-mode {config['protected-mode']}")


def _open_beyond_loopback(why: str) -> Finding:
    return Finding(
        "redis-access",
        False,
        f"Redis is reachable beyond loopback without a password ({why}): anyone who reaches its port reads "
        "learners' conversations and makes workers run any job; set a password or an ACL user (REDIS_URL "
        "takes both) or bind it to loopback",
    )


def _default_user_is_open(connection: Redis) -> bool:
    try:
        user = connection.acl_getuser("default")
    except ResponseError:  # Redis before ACLs, or no right to read them
        return _config(connection, "requirepass") == ""
    flags = user.get("flags") if isinstance(user, dict) else None
    return isinstance(flags, list) and "on" in flags and "nopass" in flags


def _host(redis_url: str) -> str:
    return urlsplit(redis_url).hostname or "localhost"


def _reached_openly(redis_url: str) -> bool:
    """This process reached a Redis on another host without a password: it is open beyond loopback."""
    parts = urlsplit(redis_url)
    if parts.scheme == "unix" or parts.password:
        return False
    return not _is_loopback(parts.hostname or "localhost")


def _is_loopback(address: str) -> bool:
    if address in ("localhost", "") or address.startswith("/"):
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
