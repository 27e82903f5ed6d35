"""Network reads in short steps, so a stop or a timeout reaches a job waiting for a model's answer.

A worker slot stops a job by raising an exception in its thread (processes/deadlines.py), which lands
only between Python instructions: a thread blocked in one `recv` until the model answers (seconds, up
to `FEYNMAN_LLM_TIMEOUT_S`) would take the stop only then. Here every read waits at most `STEP_S` and
is tried again until the read timeout the caller asked for, so the exception lands within a step.
What goes over the wire does not change: a step that times out has read nothing.
"""

from __future__ import annotations

import ssl
import time
import typing

import httpcore

#: Longest a read blocks before returning to Python (where a slot's stop or timeout lands).
STEP_S = 0.25


class SteppedStream(httpcore.NetworkStream):
    """httpcore's stream, with reads in steps of at most STEP_S up to the caller's timeout."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise httpcore.ReadTimeout(f"no answer within {timeout}s")
            try:
                return self._stream.read(max_bytes, STEP_S if left is None else min(STEP_S, left))
            except httpcore.ReadTimeout:
                continue

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return SteppedStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class SteppedBackend(httpcore.SyncBackend):
    """httpcore's own socket backend, handing out stepped streams."""

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        return SteppedStream(super().connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        return SteppedStream(super().connect_unix_socket(path, timeout, socket_options))
