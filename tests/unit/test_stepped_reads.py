"""A model call waiting for its answer takes a slot's stop within a read step (providers/stepped.py)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from feynman_jobs.errors import RetryableJobError
from feynman_jobs.processes.deadlines import DEADLINES, JobStopRequested
from feynman_jobs.providers import http
from feynman_jobs.providers.stepped import STEP_S


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections, reads the request and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in accepted:
        conn.close()


def _call(base_url: str, timeout_s: float, outcome: list[BaseException]) -> None:
    client = http.client(base_url, None, timeout_s)
    DEADLINES.arm("stepped-call", 0, JobStopRequested)
    try:
        http.post_json(client, "/v1/chat/completions", {"model": "m"}, what="chat")
    except BaseException as exc:  # the stop is a BaseException, as in a slot
        outcome.append(exc)
    finally:
        DEADLINES.disarm("stepped-call")
        client.close()


def test_a_stop_reaches_a_call_waiting_for_its_answer_within_a_step(silent_endpoint: str) -> None:
    outcome: list[BaseException] = []
    caller = threading.Thread(target=_call, args=(silent_endpoint, 60.0, outcome))
    caller.start()
    caller.join(4 * STEP_S)  # connected, request sent, waiting for the answer
    assert caller.is_alive()
    DEADLINES.interrupt("stepped-call", JobStopRequested)
    caller.join(10 * STEP_S)  # an unstepped read would wait for the answer (60 s)
    assert not caller.is_alive()
    assert [type(exc) for exc in outcome] == [JobStopRequested]


def test_the_read_timeout_still_ends_a_call_at_its_own_length(silent_endpoint: str) -> None:
    outcome: list[BaseException] = []
    _call(silent_endpoint, 0.6, outcome)
    [error] = outcome
    assert isinstance(error, RetryableJobError)
    assert "no answer within 0.6s" in str(error)
