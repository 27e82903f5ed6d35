"""bench.summary: the issue-15 table read back from the figures each benchmark wrote (no timing here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import summary
from bench.harness import RESULTS_DIR_ENV, report


def _row(lines: list[str], starts: str) -> list[str]:
    found = [line for line in lines if line.startswith(f"| {starts}")]
    assert len(found) == 1, lines
    return [cell.strip() for cell in found[0].strip("|").split("|")]


def test_each_target_is_met_or_missed_from_the_figures_and_an_absent_benchmark_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RESULTS_DIR_ENV, str(tmp_path))
    report("run", {"rows": [
        {"what": "POST /api/batches of 200 vs enqueue_many", "unit": "jobs/s", "ours": 600.0, "plain": 1000.0,
         "ratio": "0.60x", "target": ">= 0.7x"},
        {"what": "worker throughput, noop jobs", "unit": "jobs/s", "ours": 95.0, "plain": 100.0,
         "ratio": "0.95x", "target": ">= 0.9x"},
    ]})  # fmt: skip
    # Two rounds of 10 documents per job: bare 1.0 s against the worker's 1.2 s, then 1.0 s against 1.0 s.
    report("embed", {"chunks": 100, "documents": 20, "target_from_documents": 10, "lines": {
        "default": {"label": "worker line, default", "runs": {"10": [[2.0, 1.0], [2.0, 1.0]]}},
        "16": {"label": "worker line, 16", "runs": {"10": [[1.2, 1.0], [1.0, 1.0]]}},
    }})  # fmt: skip
    report("peers", {"target_per_gb": 150, "lines": {
        "plain": {"label": "plain", "per_gb": 20.0},
        "ours": {"label": "ours default", "per_gb": 30.0},
        "ours-16": {"label": "ours 16", "per_gb": 200.0},
        "dramatiq": {"label": "dramatiq", "per_gb": 140.0},
    }})  # fmt: skip
    assert json.loads((tmp_path / "run.json").read_text())["rows"][0]["ours"] == 600.0

    lines = summary.table(tmp_path)

    assert _row(lines, "POST /api/batches")[3:] == ["0.60x", ">= 0.7x", "MISSED"]
    assert _row(lines, "no-op worker")[3:] == ["0.95x", ">= 0.9x", "met"]
    assert _row(lines, "vectorization, 10 documents/job vs bare pipeline: worker line, 16")[3:] == [
        "0.92x",
        ">= 0.8x",
        "met",  # the median of 0.83 and 1.00
    ]
    assert (
        _row(lines, "vectorization, 10 documents/job vs bare pipeline: worker line, default")[5] == "MISSED"
    )
    assert _row(lines, "calls in flight per GB: ours 16")[1:] == [
        "200",
        "140",
        "1.43x",
        ">= 150/GB, ahead of Dramatiq",
        "met",
    ]
    assert _row(lines, "calls in flight per GB: ours default")[5] == "MISSED"
    assert _row(lines, "Redis commands per job")[5] == "not measured (bench.commands did not run)"
