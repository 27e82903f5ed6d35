"""pytest plugin for bin/rq-contract: RQ's own test suite, run with `rq.Worker` swapped for one of ours.

RQ_CONTRACT_WORKER names the class (`module.Class`; unset: RQ's own Worker, the reference run), and
RQ_CONTRACT_REPORT a file that receives the outcome of every test as JSON lines. The swap happens when
pytest loads this plugin, before RQ's test modules run `from rq import Worker`.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import rq
import rq.worker

_path = os.environ.get("RQ_CONTRACT_WORKER", "")
if _path:
    _module, _name = _path.rsplit(".", 1)
    _worker = getattr(importlib.import_module(_module), _name)
    rq.Worker = _worker  # type: ignore[misc]
    rq.worker.Worker = _worker  # type: ignore[misc]


def pytest_runtest_logreport(report: Any) -> None:
    """Record each test's outcome once: its call phase, or the phase that failed or skipped it."""
    if report.when == "call" or report.outcome != "passed":
        with open(os.environ["RQ_CONTRACT_REPORT"], "a") as out:
            out.write(json.dumps({"test": report.nodeid, "outcome": report.outcome}) + "\n")
