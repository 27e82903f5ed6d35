"""`feynman-jobs doctor` on the Redis it runs on: persistence, eviction, and who else can reach it.

Each case is a redis-server of its own; "beyond loopback" is a network namespace this test makes,
from which the unprotected Redis answers and the protected ones refuse.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support import VENV_BIN, OtherHost, can_make_hosts, free_port, other_host, wait_until


@contextmanager
def redis_with(tmp: Path, *options: str) -> Iterator[int]:
    """A redis-server started with `options` (bound to every interface unless they say otherwise)."""
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "redis-server"
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--dir", str(tmp), "--save", "", *options]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _accepts(port), 10, "redis-server to start")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def doctor(redis_url: str, host: OtherHost | None = None, **env: str) -> tuple[int, list[str]]:
    """`feynman-jobs doctor` (from the other host when given): exit code and its ok/WARN/FAIL lines."""
    command = [str(VENV_BIN / "feynman-jobs"), "--redis-url", redis_url, "doctor"]
    environment = {"PATH": "/usr/bin:/bin", **env}
    if host is None:
        run = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    else:
        run = host.run(*command, env=environment)
    return run.returncode, run.stdout.splitlines()


def finding(lines: list[str], check: str) -> str:
    [line] = [line for line in lines if line.split(" ", 1)[-1].lstrip().startswith(f"{check}:")]
    return line


def test_persistence_off_and_an_evicting_policy_are_failures(tmp_path: Path) -> None:
    with redis_with(
        tmp_path, "--bind", "127.0.0.1", "--appendonly", "no", "--maxmemory-policy", "allkeys-lru"
    ) as port:
        code, lines = doctor(f"redis://127.0.0.1:{port}/0")
    assert code == 1
    assert finding(lines, "redis-persistence").startswith(
        "FAIL redis-persistence: append-only persistence is off"
    )
    assert finding(lines, "redis-eviction").startswith("FAIL redis-eviction: maxmemory-policy is allkeys-lru")
    assert finding(lines, "redis-access").startswith(
        "ok   redis-access: no password, but it listens on loopback"
    )
    assert finding(lines, "access").startswith("WARN access: anonymous mode")


def test_a_well_kept_redis_passes_and_tokens_end_the_warning(tmp_path: Path) -> None:
    with redis_with(
        tmp_path, "--bind", "127.0.0.1", "--appendonly", "yes", "--requirepass", "redis-pw-0123"
    ) as port:
        code, lines = doctor(
            f"redis://:redis-pw-0123@127.0.0.1:{port}/0", FEYNMAN_API_TOKENS="doctor-token-0123456789"
        )
    assert finding(lines, "redis-persistence") == "ok   redis-persistence: append-only (appendfsync everysec)"
    assert finding(lines, "redis-eviction").startswith("ok   redis-eviction: maxmemory-policy noeviction")
    assert (
        finding(lines, "redis-access")
        == "ok   redis-access: clients must authenticate (password or ACL user)"
    )
    assert finding(lines, "access") == "ok   access: 1 client token(s), 0 operator token(s)"
    assert code == 1  # no worker or scheduler runs here: those findings fail, nothing else


def test_config_refused_is_said_not_a_crash(tmp_path: Path) -> None:
    acl = tmp_path / "users.acl"
    acl.write_text("user default off\nuser app on >app-pw-0123 ~* &* +@all -config\n")
    with redis_with(tmp_path, "--bind", "127.0.0.1", "--aclfile", str(acl)) as port:
        code, lines = doctor(f"redis://app:app-pw-0123@127.0.0.1:{port}/0")
    assert finding(lines, "redis").startswith("ok   redis: reachable")
    config = finding(lines, "redis-config")
    assert config.startswith("WARN redis-config: CONFIG GET was refused (")
    assert "check yourself that appendonly is yes" in config
    assert code == 1  # no worker or scheduler runs here


@pytest.mark.skipif(not can_make_hosts(), reason="network namespaces need root and iproute2")
def test_a_passwordless_redis_reachable_from_another_host_is_a_failure(tmp_path: Path) -> None:
    with (
        other_host() as remote,
        redis_with(tmp_path / "open", "--bind", "0.0.0.0", "--protected-mode", "no") as port,  # noqa: S104
    ):
        # It really is open: the other host reaches it without a password.
        assert (
            remote.run("redis-cli", "-h", remote.address_here, "-p", str(port), "PING").stdout.strip()
            == "PONG"
        )
        code, lines = doctor(f"redis://127.0.0.1:{port}/0")
        assert code == 1
        exposure = finding(lines, "redis-access")
        assert exposure.startswith("FAIL redis-access: Redis is reachable beyond loopback without a password")
        assert "(bind 0.0.0.0, protected-mode no)" in exposure
        # Doctor run from the other host says the same, whatever CONFIG says.
        code, lines = doctor(f"redis://{remote.address_here}:{port}/0", remote)
        assert finding(lines, "redis-access").startswith(
            "FAIL redis-access: Redis is reachable beyond loopback"
        )

    with other_host() as remote, redis_with(tmp_path / "protected", "--bind", "0.0.0.0") as port:  # noqa: S104
        refused = remote.run("redis-cli", "-h", remote.address_here, "-p", str(port), "PING")
        assert "DENIED" in refused.stdout + refused.stderr  # Redis 7's protected mode
        code, lines = doctor(f"redis://127.0.0.1:{port}/0")
        assert finding(lines, "redis-access") == (
            "ok   redis-access: no password, but protected mode refuses clients beyond loopback"
        )
