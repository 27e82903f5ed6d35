"""FeynmanClient: the feynman_jobs API from synchronous code (a Flask view, a script, a worker)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

from feynman_jobs.client import core
from feynman_jobs.client.problems import WaitTimeout, raise_for_problem, retry_after


class FeynmanClient:
    """One connection pool to one feynman_jobs service; use as a context manager or call `close()`.

    Every write carries an idempotency key; connection errors and 503 answers are retried with
    backoff (`core.RetryPolicy`); problem documents become `problems.ProblemError` subclasses.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        retry: core.RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.retry = retry or core.RetryPolicy()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=core.headers(token),
            timeout=timeout_s,
            transport=transport,
        )

    def __enter__(self) -> FeynmanClient:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(self.retry.attempts):
            response: httpx.Response | None = None
            error: Exception | None = None
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                error = exc
            last = attempt == self.retry.attempts - 1
            if last or not core.retryable(response, error):
                break
            wait_s = retry_after(response) if response is not None else None
            time.sleep(self.retry.delay(attempt, wait_s))
        if error is not None:
            raise error
        assert response is not None
        raise_for_problem(response)
        return response.json() if response.content else None

    def enqueue(self, job_type: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """Enqueue one job (`fields`: queue, depends_on, delay_s, webhook, idempotency_key …); its
        status document."""
        body = core.job_body(job_type, payload, fields)
        headers = {"Idempotency-Key": body["idempotency_key"]}
        result: dict[str, Any] = self._request("POST", "/api/jobs", json=body, headers=headers)
        return result

    def batch(self, jobs: list[dict[str, Any]], *, include_jobs: bool = False) -> dict[str, Any]:
        """Enqueue enqueue-bodies together (with `ref` / `ref:<name>` for a graph): `{id, job_ids}`, and
        `jobs` (each job's status document) with `include_jobs`."""
        params = {"include": "jobs"} if include_jobs else None
        body = core.batch_body(jobs)
        result: dict[str, Any] = self._request("POST", "/api/batches", json=body, params=params)
        return result

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's status document."""
        result: dict[str, Any] = self._request("GET", f"/api/jobs/{job_id}")
        return result

    def batch_progress(self, batch_id: str) -> dict[str, Any]:
        """A batch's counts by status and `done_fraction`."""
        result: dict[str, Any] = self._request("GET", f"/api/batches/{batch_id}")
        return result

    def wait(self, job_id: str, *, timeout_s: float = 60.0) -> dict[str, Any]:
        """Poll until the job has ended (with backoff, up to 2 s apart); its last status document.

        Raises WaitTimeout (carrying the last document) if it has not ended within `timeout_s`.
        """
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            document = self.get(job_id)
            if document["status"] in core.ENDED:
                return document
            if time.monotonic() >= deadline:
                raise WaitTimeout(job_id, document)
            time.sleep(min(core.poll_delay(attempt), max(0.0, deadline - time.monotonic())))
            attempt += 1

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a waiting job or stop a running one; its status document with `action`."""
        result: dict[str, Any] = self._request("POST", f"/api/jobs/{job_id}/cancel")
        return result

    def search(
        self, q: str, *, learner_id: str | None = None, namespace: str | None = None, k: int = 5
    ) -> dict[str, Any]:
        """Similarity search over a learner's memories and/or shared namespaces: `{hits: [...]}`."""
        params = core.search_params(q, learner_id, namespace, k)
        result: dict[str, Any] = self._request("GET", "/api/memories/search", params=params)
        return result

    def estimate(self, job_type: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """What a job would cost, without enqueueing it: `{jobs, usd, budgets}`."""
        body = {"type": job_type, "payload": payload, **{k: v for k, v in fields.items() if v is not None}}
        result: dict[str, Any] = self._request("POST", "/api/estimate", json=body)
        return result
