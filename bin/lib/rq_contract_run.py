"""Inside bin/rq-contract's private network namespace: a redis-server on localhost:6379, then RQ's worker
tests once per worker class; exits non-zero when one of ours fails a test RQ's own Worker passes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: RQ's test modules about the worker: what a worker class must keep doing.
MODULES = ["worker", "job_dependency", "retry", "callbacks", "commands"]
#: (label, worker class, FEYNMAN_WORKER_CONCURRENCY); the first is the reference.
RUNS = [
    ("rq.Worker", "", ""),
    ("SlotWorker, 1 slot (forking)", "feynman_jobs.processes.slots.SlotWorker", "1"),
    ("SlotWorker, 16 slots (threads)", "feynman_jobs.processes.slots.SlotWorker", "16"),
]
HERE = Path(__file__).resolve().parent


def outcomes(suite: Path, worker: str, slots: str, extra: list[str], report: Path) -> dict[str, str]:
    env = {**os.environ, "RQ_CONTRACT_WORKER": worker, "RQ_CONTRACT_REPORT": str(report),
           "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # fmt: skip
    if slots:
        env["FEYNMAN_WORKER_CONCURRENCY"] = slots
    command = ["pytest", "-q", "-p", "rq_contract", "-p", "no:cacheprovider", *extra,
               *(f"tests/test_{module}.py" for module in MODULES)]  # fmt: skip
    subprocess.run(command, cwd=suite, env=env, check=False, stdout=subprocess.DEVNULL)
    found = {}
    for line in report.read_text().splitlines():
        entry = json.loads(line)
        found[entry["test"]] = entry["outcome"]
    return found


def main() -> int:
    suite, extra = Path(sys.argv[1]), sys.argv[2:]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.TemporaryDirectory() as folder:
        server = ["redis-server", "--port", "6379", "--bind", "127.0.0.1", "--save", "", "--dir", folder]
        redis = subprocess.Popen(server, stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            results: list[tuple[str, dict[str, str], float]] = []
            for label, worker, slots in RUNS:
                began = time.monotonic()
                found = outcomes(suite, worker, slots, extra, Path(folder) / f"{len(results)}.jsonl")
                results.append((label, found, time.monotonic() - began))
        finally:
            redis.terminate()
            redis.wait(10)
    reference = {test for test, outcome in results[0][1].items() if outcome == "passed"}
    failed = False
    for label, found, seconds in results:
        passed = {test for test, outcome in found.items() if outcome == "passed"}
        skipped = sum(outcome == "skipped" for outcome in found.values())
        missing = sorted(reference - passed)
        print(f"==> rq contract, {label}: {len(passed)} passed, {skipped} skipped, {seconds:.0f} s; "
              f"{len(missing)} of RQ's passes not passed")  # fmt: skip
        for test in missing:
            print(f"    {found.get(test, 'not run')}: {test}")
        failed = failed or bool(missing)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
