"""rq-dashboard in a real headless Chromium (Debian's), driven by Playwright, behind basic auth.

Learners' and models' words reach these pages (topics, results, meta, errors, call strings): every
one must show as text, and no script in them may run. A page on another site must not be able to
steer the dashboard or the API through the credentials the browser holds.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Dialog, Error, Page, expect, sync_playwright
from redis import Redis
from rq.registry import FailedJobRegistry

from feynman_jobs.queueing.wiring import get_queue
from tests.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Process,
    enqueue,
    free_port,
    http,
    sample,
    wait_for,
    wait_until,
)

USER, PASSWORD = "ops", "dashboard-secret-1"

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (bin/test installs it as root)"
)


@pytest.fixture(scope="module")
def protected_web_process(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Process]]:
    """The Procfile's web process with dashboard credentials set; yields its base URL and process."""
    port = free_port()
    env = {
        "REDIS_URL": redis_url,
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "FEYNMAN_DASHBOARD_USER": USER,
        "FEYNMAN_DASHBOARD_PASSWORD": PASSWORD,
    }
    web = Process("web", env, tmp_path_factory.mktemp("web-auth") / "web.log")
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert web.proc.poll() is None, web.log()
        try:
            return http("GET", base + "/readyz")[0] == 200
        except OSError:
            return False

    wait_until(ready, 30, "gunicorn to answer /readyz")
    yield base, web
    web.stop()


@pytest.fixture(scope="module")
def protected_web(protected_web_process: tuple[str, Process]) -> str:
    return protected_web_process[0]


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Debian's chromium under Playwright, with a fresh profile; never a downloaded browser."""
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def test_dashboard_refuses_without_credentials_and_shows_queues_and_job_with_them(
    protected_web: str, redis: Redis, browser: Browser
) -> None:
    job = enqueue(protected_web, {"type": "rollup_costs", "payload": {"granularity": "day"}})

    for credentials in (None, {"username": USER, "password": "wrong"}):
        refused = browser.new_context(http_credentials=credentials)  # type: ignore[arg-type]
        page = refused.new_page()
        statuses: list[int] = []
        page.on("response", lambda response: statuses.append(response.status))  # noqa: B023
        # Without credentials Chromium abandons the navigation on the 401; with wrong ones it shows it.
        with contextlib.suppress(Error):  # net::ERR_INVALID_AUTH_CREDENTIALS
            page.goto(protected_web + "/rq/")
        assert 401 in statuses
        assert 200 not in statuses
        assert page.locator("table#queues").count() == 0
        refused.close()

    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    page = context.new_page()
    response = page.goto(protected_web + "/rq/")
    assert response is not None
    assert response.status == 200
    rows = page.locator("table#queues tbody tr")
    for name in ("high", "default", "low"):
        cell = page.get_by_role("cell", name=name, exact=True)
        expect(rows.filter(has=cell)).to_have_count(1, timeout=15_000)
    page.goto(f"{protected_web}/rq/0/view/jobs/low/queued/8/asc/1")
    expect(page.locator("table#jobs tbody")).to_contain_text(job["id"], timeout=15_000)
    context.close()


# -- learners' words are text, never markup ---------------------------------------------------------

#: Markup and script in the shapes that reach the pages; each sets window.__pwned or opens a dialog if it
#: runs. The short ones survive RQ's 75-character cut of each argument in a job's description.
TOPIC = "<img src=x onerror=window.__pwned=1;alert(1)>"
LEARNER_ID = "<b onmouseover=window.__pwned=2>l-7</b>"
META = "<svg onload=window.__pwned=3;alert(3)>"
TEMPLATE = "<%= window.__pwned=4 %>{{7*7}}"
ERROR = "'><img src=x onerror=window.__pwned=5;alert(5)>"
WORKER_KEY = "</td><iframe srcdoc=<script>parent.__pwned=6</script>></iframe>"
SAID = "<script>window.__pwned=7;alert(7)</script> Photosynthesis turns light into sugar."
#: Collects CSP violations: none may happen, ours or an injected handler's.
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective));
"""


def watched(context: BrowserContext, dialogs: list[str]) -> Page:
    page = context.new_page()

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return page


def assert_nothing_ran(page: Page, dialogs: list[str]) -> None:
    assert page.evaluate("window.__pwned") is None
    assert dialogs == []
    assert page.evaluate("window.__csp") == []
    injected = "#job-data img, #job-data svg, #job-data script, #job-data iframe, #job-data b, table img, "
    injected += "table svg, table iframe, table b, table script:not([src])"
    assert page.locator(injected).count() == 0


def test_every_job_field_is_shown_as_text_and_no_script_runs(
    protected_web: str, redis: Redis, browser: Browser, worker: Process
) -> None:
    conversation = sample("tcp_congestion_en")["messages"] + [{"role": "user", "content": SAID}]
    payload = {"topic": TOPIC, "conversation": conversation, "learner_id": LEARNER_ID}
    job = enqueue(protected_web, {"type": "consolidate_memory", "payload": payload, "meta": {"note": META}})
    wait_for(protected_web, job["id"])
    failing = get_queue("default", redis).enqueue("tests.jobs.fail_always", ERROR, meta={"t": TEMPLATE})
    wait_until(lambda: failing.get_status(refresh=True) == "failed", 30, "the failing job to fail")
    busy = get_queue("default", redis).enqueue("tests.jobs.block_until_released", WORKER_KEY)
    wait_until(lambda: busy.get_status(refresh=True) == "started", 30, "the blocking job to start")

    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    context.add_init_script(WATCH)
    dialogs: list[str] = []
    page = watched(context, dialogs)
    try:
        page.goto(f"{protected_web}/rq/0/view/job/{job['id']}")
        data = page.locator("#job-data")
        expect(data.locator("[data-field=status]")).to_have_text("finished", timeout=15_000)
        expect(data.locator("[data-field=result]")).to_contain_text(TOPIC)
        expect(data.locator("[data-field=metadata]")).to_contain_text(META)
        expect(data.locator("[data-field=description]")).to_contain_text(LEARNER_ID)
        assert_nothing_ran(page, dialogs)

        page.goto(f"{protected_web}/rq/0/view/job/{failing.id}")
        expect(data.locator("[data-field=exc_info]")).to_contain_text(
            f"RuntimeError: {ERROR}", timeout=15_000
        )
        expect(data.locator("[data-field=description]")).to_contain_text(ERROR)
        expect(data.locator("[data-field=metadata]")).to_contain_text(TEMPLATE)
        assert_nothing_ran(page, dialogs)

        page.goto(f"{protected_web}/rq/0/view/jobs/default/failed/8/asc/1")
        row = page.locator("table#jobs tbody tr[data-role=job]")
        expect(row.locator(".description")).to_contain_text(ERROR, timeout=15_000)
        expect(row.locator("pre.exc_info")).to_contain_text(ERROR)
        assert_nothing_ran(page, dialogs)

        page.goto(f"{protected_web}/rq/0/view/jobs/default/finished/8/asc/1")
        finished = page.locator(f'table#jobs tbody tr[data-job-id="{job["id"]}"]')
        expect(finished.locator(".description")).to_contain_text(LEARNER_ID, timeout=15_000)
        assert_nothing_ran(page, dialogs)

        page.goto(f"{protected_web}/rq/0/view/workers")
        expect(page.locator("table#workers tbody tr[data-role=worker]")).to_contain_text(
            WORKER_KEY, timeout=15_000
        )
        assert_nothing_ran(page, dialogs)
    finally:
        redis.rpush(WORKER_KEY, "go")
        context.close()


def test_every_html_page_is_hardened(protected_web: str, redis: Redis) -> None:
    job = get_queue("low", redis).enqueue("tests.jobs.sleep_for", 0)
    credentials = {"Authorization": "Basic b3BzOmRhc2hib2FyZC1zZWNyZXQtMQ=="}  # ops:dashboard-secret-1
    pages = ["/rq/", "/rq/0/view/queues", "/rq/0/view/jobs", "/rq/0/view/workers", f"/rq/0/view/job/{job.id}"]
    for path in pages:
        code, headers, body = http("GET", protected_web + path, headers=credentials)
        assert code == 200, path
        assert headers["Content-Type"].startswith("text/html")
        csp = headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"]) == ("DENY", "nosniff")
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "<script>" not in body
        assert "<script type" not in body


# -- another site cannot steer through the browser's credentials ---------------------------------------

EVIL_PAGE = """<!DOCTYPE html>
<html><body>
<form id="pause" method="POST" action="{base}/api/queues/pause" enctype="text/plain">
  <input name="x" value="y">
</form>
<img src="{base}/rq/requeue/default">
<script>
  const steal = {{method: "POST", mode: "no-cors", credentials: "include"}};
  fetch("{base}/rq/queue/low/queued/empty", steal);
  fetch("{base}/rq/requeue/default", steal);
  fetch("{base}/rq/job/{job_id}/delete", steal);
  fetch("{base}/api/queues/pause", steal);
  setTimeout(() => document.getElementById("pause").submit(), 300);
</script>
</body></html>
"""


@contextlib.contextmanager
def evil_site(directory: Path) -> Iterator[str]:
    """A page on another site: served on another port and opened as `localhost`, not `127.0.0.1`."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_site_cannot_steer_with_the_browsers_credentials(
    protected_web_process: tuple[str, Process], redis: Redis, browser: Browser, tmp_path: Path
) -> None:
    base, web = protected_web_process
    waiting = enqueue(base, {"type": "rollup_costs", "payload": {"granularity": "hour"}})
    failed = get_queue("default", redis).enqueue("tests.jobs.sleep_for", 0)
    failed_registry = FailedJobRegistry("default", connection=redis)
    failed_registry.add(failed, ttl=600, exc_string="RuntimeError: planted")
    (tmp_path / "evil.html").write_text(EVIL_PAGE.format(base=base, job_id=failed.id))
    log_before = len(web.log())

    context = browser.new_context(http_credentials={"username": USER, "password": PASSWORD})
    page = context.new_page()
    try:
        response = page.goto(base + "/rq/")  # the operator is logged in to the dashboard
        assert response is not None
        assert response.status == 200
        with evil_site(tmp_path) as site:
            page.goto(f"{site}/evil.html")

            def all_arrived() -> bool:
                log = web.log()[log_before:]
                sent = ("/api/queues/pause", "/rq/queue/low/queued/empty", "/rq/requeue/default", "/delete")
                return all(log.count(path) >= (2 if path == "/api/queues/pause" else 1) for path in sent)

            wait_until(all_arrived, 30, "the other site's requests to reach the web process")
    finally:
        context.close()
    refused: dict[str, Any] = {}
    for line in web.log()[log_before:].splitlines():
        parts = line.split('"')
        if len(parts) >= 3 and "/evil" not in parts[1]:
            refused.setdefault(parts[1].split()[1], set()).add(parts[2].split()[0])
    assert refused["/api/queues/pause"] == {"403"}
    assert refused["/rq/queue/low/queued/empty"] <= {"401", "403"}
    assert refused["/rq/requeue/default"] <= {"401", "403", "405"}
    assert refused[f"/rq/job/{failed.id}/delete"] <= {"401", "403"}
    assert not redis.exists("rq:suspended")
    assert redis.lrange("rq:queue:low", 0, -1) == [waiting["id"].encode()]
    assert failed_registry.get_job_ids() == [failed.id]
    assert redis.exists(f"rq:job:{failed.id}")
