"""The alert rules shipped in deploy/prometheus/ name only metrics /metrics exports (promtool checks
their syntax and behaviour in bin/test)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from redis import Redis

from feynman_jobs.settings import load_settings
from feynman_jobs.web import create_app

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
#: What a Prometheus counter named `x` is exposed as.
_SUFFIXES = ("_total", "_bucket", "_sum", "_count", "_created")


def test_every_metric_an_alert_names_is_exported(redis_url: str, redis: Redis) -> None:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    named = {name for rule in rules for name in re.findall(r"\bfeynman_[a-z_]+", rule["expr"])}
    assert {"feynman_budget_limit_usd", "feynman_workers", "feynman_jobs_total"} <= named
    assert {rule["alert"] for rule in rules} >= {
        "FeynmanBudgetAbove80Percent",
        "FeynmanJobSuccessRateLow",
        "FeynmanHighQueueWaiting",
        "FeynmanNoWorkerAlive",
    }
    settings = load_settings(redis_url=redis_url, budget_daily_usd=1.0, llm_tpm=1000)
    client = create_app(settings).test_client()
    response = client.get("/metrics", headers={"Host": "localhost"})
    assert response.status_code == 200
    exposition = response.get_data(as_text=True)
    families = set(re.findall(r"^# TYPE (\S+) (\w+)$", exposition, re.MULTILINE))
    exported = {name for name, _ in families}
    exported |= {
        name + suffix for name, kind in families if kind in ("counter", "histogram") for suffix in _SUFFIXES
    }
    assert named <= exported, sorted(named - exported)
    assert 'feynman_budget_limit_usd{window="daily"} 1.0' in exposition
    assert 'feynman_ratelimit_limit{kind="chat",limit="tpm"} 1000.0' in exposition
