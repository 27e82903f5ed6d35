"""One log line per job event; JSON lines with FEYNMAN_LOG_FORMAT=json, in worker, CLI and web; no secrets."""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest
from pytest_httpserver import HTTPServer
from redis import Redis
from werkzeug import Request, Response

from feynman_jobs.logs import JsonFormatter
from feynman_jobs.queueing.wiring import fetch_job
from tests.support import VENV_BIN, Process, http, start_web, start_worker, wait_until

SECRET = "tok-never-in-logs-7f3a"
JSON_ENV = {"FEYNMAN_LOG_FORMAT": "json", "FEYNMAN_API_TOKENS": SECRET}


def cli_enqueue(redis_url: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """Enqueue a rollup through the command line; its job id and what it logged."""
    run = subprocess.run(
        [str(VENV_BIN / "feynman-jobs"), "enqueue", "rollup_costs", "--payload", '{"granularity": "hour"}'],
        env={"REDIS_URL": redis_url, "PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(run.stdout)["id"], run.stderr


def finished(redis: Redis, job_id: str) -> bool:
    return fetch_job(job_id, redis).get_status(refresh=True) == "finished"


def test_worker_and_cli_write_json_lines_with_the_job_event(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    job_id, cli_log = cli_enqueue(redis_url, JSON_ENV)
    [enqueued] = [json.loads(line) for line in cli_log.splitlines()]
    assert enqueued["message"].startswith(f"enqueued job type=rollup_costs id={job_id} queue=low")
    assert enqueued["level"] == "INFO"
    worker = start_worker(redis_url, tmp_path / "worker.log", redis, JSON_ENV)
    try:
        wait_until(lambda: finished(redis, job_id), 30, "the job to finish")
        wait_until(lambda: f'"job_id": "{job_id}"' in worker.log(), 10, "the job event line")
    finally:
        worker.stop()
    log = worker.log()
    assert SECRET not in log
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]  # every line is JSON
    [event] = [line for line in lines if line.get("job_id") == job_id and "outcome" in line]
    assert (event["job_type"], event["queue"], event["outcome"]) == ("rollup_costs", "low", "finished")
    assert event["duration_s"] >= 0
    assert event["logger"] == "feynman_jobs.lifecycle.outcomes"
    assert any(line["logger"].startswith("rq.") for line in lines), "RQ's own lines are JSON too"


def test_text_lines_by_default(redis_url: str, redis: Redis, worker: Process) -> None:
    job_id, cli_log = cli_enqueue(redis_url)
    assert (
        f"INFO feynman_jobs.queueing.writer enqueued job type=rollup_costs id={job_id} queue=low" in cli_log
    )
    wait_until(lambda: finished(redis, job_id), 30, "the job to finish")
    wait_until(lambda: f"id={job_id}" in worker.log(), 10, "the job event line")
    [line] = [
        line for line in worker.log().splitlines() if f"job finished type=rollup_costs id={job_id}" in line
    ]
    assert " queue=low duration_s=" in line


def test_json_formatter_keeps_extra_fields_and_unicode() -> None:
    record = logging.makeLogRecord(
        {"name": "feynman_jobs.x", "levelname": "INFO", "msg": "主题 %s", "args": ("光合作用",)}
    )
    record.job_id = "j-1"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "主题 光合作用"
    assert entry["job_id"] == "j-1"
    assert set(entry) == {"time", "level", "logger", "message", "job_id"}


#: A phrase only a learner wrote: it must appear in no log line of any process.
LEARNER_PHRASE = "zebra-quokka-7731"
#: What the model provider's error answer holds (it echoes the prompt, as some do): never logged verbatim.
PROVIDER_BODY = "provider-says-secret-detail-4410"
LLM_KEY = "sk-privacy-test-key-9b2f"


def _echoing_refusal(request: Request) -> Response:
    prompt = json.loads(request.get_data())["messages"][-1]["content"]
    body = {
        "error": {"message": f"{PROVIDER_BODY}: cannot use {prompt[:200]}", "type": "invalid_request_error"}
    }
    return Response(json.dumps(body), status=400, content_type="application/json")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_learner_text_provider_bodies_and_secrets_stay_out_of_every_log(
    redis_url: str, redis: Redis, tmp_path: Path, httpserver: HTTPServer, log_format: str
) -> None:
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(_echoing_refusal)
    env = {"FEYNMAN_LOG_FORMAT": log_format, "FEYNMAN_API_TOKENS": SECRET}
    web, base = start_web(redis_url, tmp_path / "web.log", env)
    worker = start_worker(
        redis_url,
        tmp_path / "worker.log",
        redis,
        {**env, "FEYNMAN_LLM_BASE_URL": httpserver.url_for("/v1"), "FEYNMAN_LLM_API_KEY": LLM_KEY},
    )
    auth = {"Authorization": f"Bearer {SECRET}"}
    said = [
        {"role": "assistant", "content": "Explain photosynthesis in your own words."},
        {"role": "user", "content": f"Plants make sugar from light, {LEARNER_PHRASE}, and water."},
    ]
    bodies = [
        {"type": "analyze_conversation", "payload": {"session_id": "s-1", "topic": LEARNER_PHRASE,
                                                     "conversation": said}, "max_retries": 0},
        {"type": "consolidate_memory", "payload": {"learner_id": "l-1", "topic": "photosynthesis",
                                                   "conversation": said}, "max_retries": 0},
        {"type": "vectorize_documents", "payload": {"namespace": "notes", "documents": [
            {"id": "n-1", "text": f"Notes: {LEARNER_PHRASE} and chlorophyll."}]}},
    ]  # fmt: skip
    try:
        ids = []
        for body in bodies:
            code, _, job = http("POST", base + "/api/jobs", body, auth)
            assert code == 202, job
            ids.append(job["id"])

        def ended() -> bool:
            statuses = [http("GET", f"{base}/api/jobs/{job_id}", None, auth)[2]["status"] for job_id in ids]
            return statuses == ["failed", "failed", "finished"]

        wait_until(ended, 60, "the jobs to end")
        failed = http("GET", f"{base}/api/jobs/{ids[0]}", None, auth)[2]
        assert failed["error"]["type"] == "ProviderError"
        assert failed["error"]["message"] == "LLM gpt-4o-mini: HTTP 400: error invalid_request_error"
        query = urlencode({"q": LEARNER_PHRASE, "namespace": "notes"})
        assert http("GET", f"{base}/api/memories/search?{query}", None, auth)[0] == 200
        wait_until(lambda: "/api/memories/search" in web.log(), 10, "the access log line")
        wait_until(lambda: all(job_id in worker.log() for job_id in ids), 10, "the worker's job lines")
    finally:
        worker.stop()
        web.stop()
    logs = {"web": web.log(), "worker": worker.log()}
    assert '"GET /api/memories/search HTTP/1.1" 200' in logs["web"]  # logged, without its query string
    assert "exception raised while executing" in logs["worker"]  # RQ's failure line, with its extras
    assert f"analyze_conversation(session_id='s-1') ({ids[0]})" in logs["worker"]  # RQ's job line
    for name, log in logs.items():
        for secret in (LEARNER_PHRASE, PROVIDER_BODY, LLM_KEY, SECRET):
            assert secret not in log, (name, secret)
