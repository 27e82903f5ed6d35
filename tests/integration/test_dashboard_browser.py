"""rq-dashboard in a real headless Chromium (Debian's), driven by Playwright, behind basic auth."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Error, expect, sync_playwright
from redis import Redis

from tests.support import Process, enqueue, free_port, http, wait_until

CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "ops", "dashboard-secret-1"
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

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (bin/test installs it as root)"
)


@pytest.fixture(scope="module")
def protected_web(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Procfile's web process with dashboard credentials set; yields its base URL."""
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
    yield base
    web.stop()


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
