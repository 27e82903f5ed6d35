"""/ui/costs in a real headless Chromium (Debian's), behind the dashboard's basic auth: the charts are
drawn (SVG marks counted), every figure equals /api/costs, /api/budget and /api/limits, names are
text, no script from the data runs, and a screenshot is kept (var/test-artifacts/, docs/)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect, sync_playwright
from redis import Redis

from feynman_jobs.costs import ledger, rollups
from feynman_jobs.costs.ratelimit import ProviderLimiter
from feynman_jobs.settings import load_settings
from tests.support import CHROMIUM, CHROMIUM_ARGS, http, start_web

USER, PASSWORD = "ops", "dashboard-secret-1"
ZONE = "Asia/Shanghai"
#: A model name that is markup: the page must show it as text.
HOSTILE = "<img src=x onerror=window.__pwned=1>"
ARTIFACTS = Path(
    os.environ.get("FEYNMAN_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "var" / "test-artifacts")
)
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective));
"""

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian chromium is not installed (bin/test installs it as root)"
)


def _spend(redis: Redis) -> None:
    """Model calls over the last days, oldest first (ledger ids must grow), then rolled up."""
    now = datetime.now(UTC)
    calls = [
        (timedelta(days=3), "gpt-4o-mini", "analyze_conversation", 1_250_000),
        (timedelta(hours=5), "gpt-4o-mini", "consolidate_memory", 400_000),
        (timedelta(hours=5), "text-embedding-3-small", "vectorize_documents", 20_000),
        (timedelta(hours=1), HOSTILE, "analyze_conversation", 90_000),
        (timedelta(0), "text-embedding-3-small", "search", 3_000),
        (timedelta(0), "gpt-4o-mini", "analyze_conversation", 210_000),
    ]
    zone = load_settings(timezone=ZONE).zone
    for ago, model, job_type, micros in calls:
        ledger.record_call(
            redis, model=model, tokens_in=100, tokens_out=10, usd_micros=micros, job_id="j",
            job_type=job_type, at=now - ago, zone=zone,
        )  # fmt: skip
    for granularity in ("hour", "day"):
        rollups.catch_up(redis, granularity, zone=zone)


def _pairs(document: dict[str, Any], key: str) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for window in document["windows"]:
        for row in window["by_model_and_type"]:
            pair = (window["window_start"], row[key])
            out[pair] = out.get(pair, 0.0) + row["usd_micros"] / 1e6
    return {pair: usd for pair, usd in out.items() if usd > 0}


def test_the_costs_page_draws_the_api_figures(redis_url: str, redis: Redis, tmp_path: Path) -> None:
    env = {
        "WEB_CONCURRENCY": "1",
        "FEYNMAN_DASHBOARD_USER": USER,
        "FEYNMAN_DASHBOARD_PASSWORD": PASSWORD,
        "FEYNMAN_BUDGET_DAILY_USD": "2.5",
        "FEYNMAN_BUDGET_TOTAL_USD": "40",
        "FEYNMAN_LLM_TPM": "20000",
        "FEYNMAN_TIMEZONE": ZONE,
    }
    web, base = start_web(redis_url, tmp_path / "web.log", env)
    _spend(redis)
    ProviderLimiter(redis, load_settings(llm_tpm=20000), "chat").acquire(4500)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1366, "height": 900},
            )
            context.add_init_script(WATCH)
            page = context.new_page()
            page.goto(base + "/rq/")
            page.get_by_role("link", name="Costs, budgets and rate limits").click()
            expect(page.locator("body[data-drawn=true]")).to_have_count(1, timeout=15_000)
            assert page.url == base + "/ui/costs"
            shown = json.loads(page.locator("#costs-data").text_content() or "{}")

            for series, granularity in (("hourly", "hour"), ("daily", "day")):
                query = urlencode({"granularity": granularity, "since": shown[series]["since"],
                                   "until": shown[series]["until"]})  # fmt: skip
                code, _, api = http("GET", f"{base}/api/costs?{query}")
                assert code == 200
                assert api["windows"] == shown[series]["windows"]
                for key, suffix in (("model", "model"), ("job_type", "type")):
                    marks = page.locator(f"#{series}-{suffix} rect.mark")
                    drawn = {
                        (m.get_attribute("data-start"), m.get_attribute("data-name")): float(
                            m.get_attribute("data-usd") or 0
                        )
                        for m in marks.all()
                    }
                    expected = _pairs(api, key)
                    assert marks.count() == len(expected) > 0
                    assert drawn.keys() == expected.keys()
                    for pair, usd in expected.items():
                        assert drawn[pair] == pytest.approx(usd)
                total = sum(window["usd"] for window in api["windows"])
                assert float(
                    page.locator(f"#{series}-total").get_attribute("data-usd") or 0
                ) == pytest.approx(total)
            assert len(shown["hourly"]["starts"]) == 48
            assert len(shown["daily"]["starts"]) == 30
            assert shown["daily"]["starts"][-1].endswith("T16:00:00Z")  # days begin at midnight in Shanghai

            budget = http("GET", base + "/api/budget")[2]
            assert {b["budget"] for b in budget["budgets"]} == {"daily", "total"}
            for b in budget["budgets"]:
                bar = page.locator(f".bar[data-budget={b['budget']}]")
                for name in ("limit_usd", "spent_usd", "reserved_usd", "remaining_usd"):
                    assert float(bar.get_attribute("data-" + name.replace("_", "-")) or -1) == b[name]
                assert bar.locator("rect.mark[data-part=spent]").count() == (1 if b["spent_usd"] else 0)
                expect(bar.locator(".figures")).to_contain_text(f"spent ${b['spent_usd']:.6f}")
            tpm = http("GET", base + "/api/limits")[2]["limits"]["chat"]["tpm"]
            bar = page.locator(".bar[data-kind=chat][data-limit=tpm]")
            assert (bar.get_attribute("data-used"), bar.get_attribute("data-limit-value")) == (
                "4500",
                "20000",
            )
            assert tpm["used"] == 4500
            expect(bar.locator(".figures")).to_contain_text("used 4500 of 20000")

            expect(page.locator("#hourly-model .legend")).to_contain_text(HOSTILE)
            assert page.evaluate("window.__pwned") is None
            assert page.evaluate("window.__csp") == []
            assert page.locator("main img").count() == 0
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "costs-page.png"), full_page=True)
            browser.close()
    finally:
        web.stop()
