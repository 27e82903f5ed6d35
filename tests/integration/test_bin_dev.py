"""`bin/dev` brings up redis, web, worker and scheduler; the README's example works; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support import ROOT, descendants, free_port, http, process_state, sample, wait_until


def test_bin_dev_runs_everything_and_stops_everything(tmp_path: Path) -> None:
    port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {"PORT": str(port), "FEYNMAN_DEV_REDIS_PORT": str(redis_port), "FEYNMAN_DEV_REDIS_DIR": str(tmp_path)}
    )
    log = (tmp_path / "dev.log").open("wb")
    dev = subprocess.Popen(
        [str(ROOT / "bin" / "dev")],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    output = tmp_path / "dev.log"
    children: set[int] = set()
    try:

        def up() -> bool:
            assert dev.poll() is None, output.read_text()
            try:
                return http("GET", base + "/readyz")[0] == 200
            except OSError:
                return False

        wait_until(up, 120, "bin/dev to serve /readyz")
        printed = output.read_text()
        assert f"http://127.0.0.1:{port}/api/jobs" in printed
        assert f"http://127.0.0.1:{port}/rq/" in printed

        conversation = sample("photosynthesis_zh")
        payload = {
            "session_id": "dev",
            "topic": conversation["topic"],
            "conversation": conversation["messages"],
        }
        code, headers, _ = http(
            "POST", base + "/api/jobs", {"type": "analyze_conversation", "payload": payload}
        )
        assert code == 202

        def finished() -> bool:
            return bool(http("GET", base + headers["Location"])[2]["status"] == "finished")

        wait_until(finished, 60, "the README example job to finish under bin/dev")
        wait_until(lambda: "periodic-rollup_costs-hour" in output.read_text(), 30, "the scheduler to sync")
        children = descendants(dev.pid)
        assert len(children) >= 4  # redis-server, honcho's web, worker and scheduler (and their children)
    finally:
        os.killpg(dev.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        try:
            dev.wait(30)
        finally:
            log.close()
    leftovers = [pid for pid in children if Path(f"/proc/{pid}").exists() and "Z" not in process_state(pid)]
    assert leftovers == [], f"still running after Ctrl-C: {leftovers}"
