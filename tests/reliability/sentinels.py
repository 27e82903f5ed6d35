"""A Redis master, one replica (both append-only) and three sentinels on loopback, for failover tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from redis import Redis

from feynman_jobs.queueing.replication import online_replicas
from tests.support import free_port, wait_until

#: The name the sentinels know the master by (FEYNMAN_REDIS_SENTINEL_MASTER).
MASTER_NAME = "feynman"
#: How long a silent master has before the sentinels call it down: short, so the test is short.
DOWN_AFTER_MS = 1000


class SentinelSet:
    """The deployment a Sentinel-managed service runs against; every process is this object's."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self.ports = [free_port(), free_port()]
        self._start_redis(self.ports[0])
        self._start_redis(self.ports[1], "--replicaof", "127.0.0.1", str(self.ports[0]))
        wait_until(lambda: self._replicas_of(self.ports[0]) == 1, 20, "the replica to sync")
        self.sentinel_ports = [free_port() for _ in range(3)]
        for port in self.sentinel_ports:
            self._start_sentinel(port)
        wait_until(self._sentinels_agree, 20, "the sentinels to see each other and the replica")

    @property
    def env(self) -> dict[str, str]:
        """What every process of the service needs; REDIS_URL's address is deliberately useless."""
        return {
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "FEYNMAN_REDIS_SENTINELS": ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports),
            "FEYNMAN_REDIS_SENTINEL_MASTER": MASTER_NAME,
        }

    def master_port(self) -> int:
        """The master's port, as the first sentinel that answers says."""
        for port in self.sentinel_ports:
            try:
                sentinel = Redis(port=port, socket_timeout=1)
                _, master = sentinel.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                return int(master)
            except Exception:  # noqa: S112 - a sentinel that is down: ask the next one
                continue
        raise AssertionError("no sentinel answers")

    def client(self, port: int) -> Redis:
        """A plain client of one Redis of the set."""
        return Redis(port=port, socket_connect_timeout=1, socket_timeout=5)

    def pid(self, port: int) -> int:
        """The pid of the redis-server on `port`."""
        return self._procs[port].pid

    def kill(self, port: int) -> None:
        """SIGKILL the redis-server on `port`: no goodbye to its clients or its replica."""
        os.kill(self._procs[port].pid, signal.SIGKILL)
        self._procs[port].wait(5)

    def close(self) -> None:
        """Stop every process of the set."""
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _start_redis(self, port: int, *extra: str) -> None:
        folder = self.tmp / f"redis-{port}"
        folder.mkdir(parents=True)
        self._spawn(
            port,
            [_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", *extra],
        )  # fmt: skip

    def _start_sentinel(self, port: int) -> None:
        config = self.tmp / f"sentinel-{port}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.tmp}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.ports[0]} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER_NAME} 10000\n"
        )
        self._spawn(port, [_binary(), str(config), "--sentinel"])

    def _spawn(self, port: int, command: list[str]) -> None:
        log = (self.tmp / f"redis-{port}.log").open("ab")
        self._procs[port] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wait_until(lambda: _answers(port), 10, f"redis on {port} to start")

    def _replicas_of(self, port: int) -> int:
        return online_replicas(self.client(port).info("replication"))

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            master = Redis(port=port, socket_timeout=1).execute_command("SENTINEL MASTER", MASTER_NAME)
            if int(master["num-other-sentinels"]) < 2 or int(master["num-slaves"]) < 1:
                return False
        return True


def _binary() -> str:
    return os.environ.get("REDIS_SERVER") or shutil.which("redis-server") or "redis-server"


def _answers(port: int) -> bool:
    try:
        return bool(Redis(port=port, socket_connect_timeout=0.2).ping())
    except Exception:
        return False


def wait_for_new_master(sentinels: SentinelSet, old: int, timeout: float = 30) -> tuple[int, float]:
    """The port of the master the sentinels promoted instead of `old`, and how long it took."""
    started = time.monotonic()
    wait_until(lambda: sentinels.master_port() != old, timeout, "the sentinels to promote the replica")
    return sentinels.master_port(), time.monotonic() - started
