"""Anonymous mode, on the Procfile's gunicorn bound to 0.0.0.0: another host gets 401, this machine is served.

The other host is a network namespace of this test's own, joined by a veth pair: its requests arrive
from a real non-loopback address, as another machine's would.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from tests.support import OtherHost, analyze_body, can_make_hosts, http, other_host, start_web

pytestmark = pytest.mark.skipif(not can_make_hosts(), reason="network namespaces need root and iproute2")
EVERYTHING_BUT_HEALTH = [
    ("GET", "/api/jobs"),
    ("GET", "/api/queues"),
    ("GET", "/api/memories/search?q=x&learner_id=l-1"),
    ("GET", "/api/openapi.json"),
    ("POST", "/api/queues/pause"),
    ("DELETE", "/api/learners/l-1/memories"),
    ("GET", "/metrics"),
    ("GET", "/rq/"),
    ("GET", "/rq/0/data/queues.json"),
    ("GET", "/rq/assets/dashboard.js"),
    ("GET", "/no-such-page"),
]


@pytest.fixture(scope="module")
def anonymous_web(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Procfile's web process with no token of any kind configured."""
    web, base = start_web(redis_url, tmp_path_factory.mktemp("anonymous") / "web.log")
    yield base
    web.stop()


@pytest.fixture(scope="module")
def remote() -> Iterator[OtherHost]:
    with other_host() as host:
        yield host


def test_another_host_gets_401_naming_the_variable_and_nothing_is_written(
    anonymous_web: str, remote: OtherHost, redis: Redis
) -> None:
    port = anonymous_web.rsplit(":", 1)[1]
    there = f"http://{remote.address_here}:{port}"
    for method, path in EVERYTHING_BUT_HEALTH:
        status, body = remote.http(method, there + path)
        assert status == 401, (path, body)
        assert "FEYNMAN_API_TOKENS" in body["detail"], path
    assert remote.http("GET", there + "/healthz") == (200, {"status": "ok"})
    assert remote.http("GET", there + "/readyz")[0] == 200
    assert redis.keys("rq:*") == []
    assert not redis.exists("rq:suspended")


def test_this_machine_is_served_without_configuration(anonymous_web: str, redis: Redis) -> None:
    code, _, job = http("POST", anonymous_web + "/api/jobs", analyze_body("s-anon"))
    assert code == 202, job
    port = anonymous_web.rsplit(":", 1)[1]
    for base in (anonymous_web, f"http://localhost:{port}"):
        code, _, listed = http("GET", base + "/api/jobs")
        assert (code, [item["id"] for item in listed["jobs"]]) == (200, [job["id"]])
    assert http("GET", anonymous_web + "/rq/")[0] == 200
    assert http("GET", anonymous_web + "/metrics")[0] == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "tutor.example.com"},  # DNS rebinding: another site's name resolving to 127.0.0.1
        {"X-Forwarded-For": "198.51.100.4"},  # a reverse proxy on this host: its peer is loopback
        {"Forwarded": "for=198.51.100.4;proto=https"},
        {"X-Forwarded-Proto": "https"},
    ],
)
def test_loopback_through_a_proxy_or_for_another_name_is_refused(
    anonymous_web: str, redis: Redis, headers: dict[str, str]
) -> None:
    for method, path in (("GET", "/api/jobs"), ("GET", "/rq/"), ("POST", "/api/queues/pause")):
        code, _, body = http(method, anonymous_web + path, headers=headers)
        assert code == 401, (path, headers, body)
        assert "FEYNMAN_API_TOKENS" in body["detail"]
    assert not redis.exists("rq:suspended")


def test_the_procfile_still_binds_every_interface() -> None:
    procfile = (Path(__file__).resolve().parents[2] / "Procfile").read_text()
    assert '--bind "0.0.0.0:${PORT:-8000}"' in procfile
