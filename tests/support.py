"""Real processes for tests: a throwaway redis-server and the Procfile's own process lines."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.samples import CONVERSATIONS, TOPICS

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
#: Debian's chromium, which the browser tests drive with Playwright (its own browser download fails offline).
CHROMIUM = "/usr/bin/chromium"
# The flags this machine needs: no sandbox as root, and no background calls to a closed network.
# Playwright adds --headless itself and starts every launch on a new, empty profile directory.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until it is true; fail the test naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def redis_server(tmp: Path, *, appendonly: bool = False, also_bind: str | None = None) -> Iterator[str]:
    """Start redis-server on a free loopback port (and `also_bind`, an address of a test network
    namespace's link); yield its loopback URL; stop it."""
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise RuntimeError("redis-server is not installed (bin/test installs it)")
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    bind = "127.0.0.1" if also_bind is None else f"127.0.0.1 {also_bind}"
    args = [binary, "--port", str(port), "--bind", bind, "--dir", str(tmp), "--save", ""]
    if also_bind is not None:  # reachable only from the test's own namespace
        args += ["--protected-mode", "no"]
    args += ["--appendonly", "yes" if appendonly else "no", "--daemonize", "no", "--loglevel", "warning"]
    log = (tmp / "redis.log").open("wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _accepts(port), 10, "redis-server to accept connections")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def procfile_command(name: str) -> str:
    """The command line of one Procfile process, exactly as deployed."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        match = re.match(rf"^{re.escape(name)}:\s*(.+)$", line)
        if match:
            return match.group(1)
    raise KeyError(name)


class Process:
    """A Procfile process run by bash with the platform's environment (REDIS_URL, PORT)."""

    def __init__(self, name: str, env: dict[str, str], log: Path, command: str | None = None) -> None:
        self.name = name
        self.log_path = log
        full_env = {**os.environ, **env, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", "PYTHONUNBUFFERED": "1"}
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            ["bash", "-c", command or procfile_command(name)],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        """Signal the whole process group and wait for it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One HTTP request with a JSON body; returns status, headers and the decoded JSON (or text)."""
    data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers.update(headers or {})
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, resp_headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, raw, resp_headers = error.code, error.read(), dict(error.headers)
    text = raw.decode("utf-8", errors="replace")
    try:
        return status, resp_headers, json.loads(text)
    except ValueError:
        return status, resp_headers, text


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (children, grandchildren …), read from /proc."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
                frontier.append(int(entry.name))
    return found


def work_horses(worker_pid: int) -> set[int]:
    """The work horses of an rq worker: its children that lead their own process group (RQ's setpgrp)."""
    horses = set()
    for pid in descendants(worker_pid):
        try:
            stat = (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[2]) == pid and stat[0] != "Z":
            horses.add(pid)
    return horses


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    return process_state(pid) != "Z"


def process_state(pid: int) -> str:
    """The one-letter state of a process ("Z" for a zombie or a process that is gone)."""
    try:
        return (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


# -- the Procfile's processes, started the way a platform starts them ------------------------------


def start_web(redis_url: str, log: Path, env: dict[str, str] | None = None) -> tuple[Process, str]:
    """The Procfile's `web` process (gunicorn) on a free port, once it answers /readyz."""
    port = free_port()
    web = Process(
        "web", {"REDIS_URL": redis_url, "PORT": str(port), "WEB_CONCURRENCY": "2", **(env or {})}, log
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert web.proc.poll() is None, f"web exited:\n{web.log()}"
        try:
            return http("GET", base + "/readyz")[0] == 200
        except OSError:
            return False

    wait_until(ready, 30, "gunicorn to answer /readyz")
    return web, base


#: Parametrize the `worker` fixture indirectly with this to run a test on both ways a worker line runs
#: jobs: slots (the default FEYNMAN_WORKER_CONCURRENCY) and one forked work horse per job.
SLOTS_AND_FORKING = pytest.mark.parametrize("worker", [None, 1], indirect=True, ids=["slots", "forking"])


def start_worker(redis_url: str, log: Path, redis: Redis, env: dict[str, str] | None = None) -> Process:
    """The Procfile's `worker` process (with extra environment), once it has registered with Redis."""
    worker = Process("worker", {"REDIS_URL": redis_url, **(env or {})}, log)

    def registered() -> bool:
        assert worker.proc.poll() is None, f"worker exited:\n{worker.log()}"
        return bool(redis.scard("rq:workers"))

    wait_until(registered, 30, "the rq worker to register")
    return worker


# -- the API as a client uses it ------------------------------------------------------------------


def sample(name: str) -> dict[str, Any]:
    """A sample conversation with its topic."""
    return {"topic": TOPICS[name], "messages": CONVERSATIONS[name]}


def enqueue(api: str, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    code, headers, document = http("POST", api + "/api/jobs", body)
    assert code == status, document
    assert headers["Location"] == f"/api/jobs/{document['id']}"
    return dict(document)


def wait_for(
    api: str, job_id: str, statuses: tuple[str, ...] = ("finished",), timeout: float = 60
) -> dict[str, Any]:
    """Poll the status document until the job reaches one of `statuses` (or ends otherwise: fail)."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        code, _, document = http("GET", f"{api}/api/jobs/{job_id}")
        assert code == 200, document
        seen.update(document)
        if document["status"] in ("failed", "stopped", "canceled") and document["status"] not in statuses:
            raise AssertionError(f"job ended {document['status']}: {document['error']}")
        return document["status"] in statuses

    wait_until(reached, timeout, f"job {job_id} to be {statuses}", interval=0.1)
    return dict(seen)


def analyze_body(session: str) -> dict[str, Any]:
    """An enqueue body of analyze_conversation on the Chinese photosynthesis sample."""
    conversation = sample("photosynthesis_zh")
    payload = {
        "session_id": session,
        "topic": conversation["topic"],
        "conversation": conversation["messages"],
    }
    return {"type": "analyze_conversation", "payload": payload}


# -- another host: a Linux network namespace joined to this one by a veth pair ----------------------

#: Runs inside the other host: one HTTP request, printed as JSON {status, body}.
_REMOTE_HTTP = """
import json, sys
from tests.support import http
status, _, body = http(sys.argv[1], sys.argv[2], None, json.loads(sys.argv[3]))
print(json.dumps({"status": status, "body": body}))
"""


@dataclass(frozen=True)
class OtherHost:
    """A Linux network namespace joined to this one by a veth pair: another host, for tests."""

    namespace: str
    host_link: str
    #: This side's address on the pair (where the other host reaches processes bound to 0.0.0.0 here),
    #: and the other host's own address.
    address_here: str
    address: str

    @property
    def gateway(self) -> str:
        """This side's address, as the other host's route to us."""
        return self.address_here

    def command(self, command: str) -> str:
        """`command` (a shell line) run inside the namespace."""
        return f"ip netns exec {self.namespace} bash -c {shlex.quote(command)}"

    def cut(self) -> None:
        """Cut the link: packets are dropped, connections hang (as when a host is partitioned)."""
        subprocess.run(["ip", "link", "set", self.host_link, "down"], check=True)

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the other host (cwd: the repository)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *args],
            cwd=ROOT,
            env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def http(self, method: str, url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One HTTP request made from the other host: status and decoded body."""
        done = self.run(str(VENV_BIN / "python"), "-c", _REMOTE_HTTP, method, url, json.dumps(headers or {}))
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        return int(answer["status"]), answer["body"]


def can_make_hosts() -> bool:
    """Network namespaces need root and iproute2."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


@contextmanager
def other_host() -> Iterator[OtherHost]:
    """A second host for one test: a namespace and a veth pair on a random private /30 of 10.254.0.0/16
    (.1 this side, .2 the other), removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    block = random.randrange(0, 256 * 64)
    stem, first = f"10.254.{block // 64}", (block % 64) * 4
    host = OtherHost(f"fj-{tag}", f"fjh{tag}", f"{stem}.{first + 1}", f"{stem}.{first + 2}")
    inside = f"fjn{tag}"
    steps = [
        ["ip", "netns", "add", host.namespace],
        ["ip", "link", "add", host.host_link, "type", "veth", "peer", "name", inside],
        ["ip", "link", "set", inside, "netns", host.namespace],
        ["ip", "addr", "add", f"{host.address_here}/30", "dev", host.host_link],
        ["ip", "link", "set", host.host_link, "up"],
        ["ip", "netns", "exec", host.namespace, "ip", "addr", "add", f"{host.address}/30", "dev", inside],
        ["ip", "netns", "exec", host.namespace, "ip", "link", "set", inside, "up"],
        ["ip", "netns", "exec", host.namespace, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for step in steps:
            subprocess.run(step, check=True, capture_output=True, timeout=30)
        yield host
    finally:
        subprocess.run(["ip", "link", "del", host.host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, timeout=30)
