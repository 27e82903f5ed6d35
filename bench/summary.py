"""The issue-15 targets from one `bench/run`: each figure with its baseline, ratio, target, met or missed.

Usage: .venv/bin/python -m bench.summary <results dir>   (bench/run calls it last)

Reads the JSON each benchmark wrote into the run's results directory (bench/harness.report): run.json
(batches, no-op worker), commands.json, embed.json and peers.json. A benchmark that did not run shows
as "not measured". Prints one table; asserts nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median
from typing import Any

Row = tuple[str, str, str, str, str, str]


def load(folder: Path, name: str) -> dict[str, Any] | None:
    """One benchmark's figures, or None when it did not run (or did not finish)."""
    path = folder / f"{name}.json"
    if not path.exists():
        return None
    figures: dict[str, Any] = json.loads(path.read_text())
    return figures


def verdict(met: bool) -> str:
    """The last column."""
    return "met" if met else "MISSED"


def missing(what: str, target: str, source: str) -> Row:
    """A row whose benchmark did not run."""
    return (what, "-", "-", "-", target, f"not measured ({source} did not run)")


def in_flight_rows(peers: dict[str, Any] | None) -> list[Row]:
    """Calls in flight per GB: our two lines against Dramatiq with threads; plain RQ's for reference."""
    target = ">= 150/GB, ahead of Dramatiq"
    if peers is None:
        return [missing("model calls in flight per GB", target, "bench.peers")]
    lines, goal = peers["lines"], peers["target_per_gb"]
    dramatiq = lines.get("dramatiq", {}).get("per_gb", 0.0)
    rows: list[Row] = []
    for key in ("ours", *sorted(k for k in lines if k.startswith("ours-"))):
        if key not in lines:
            continue
        ours = lines[key]["per_gb"]
        ratio = f"{ours / dramatiq:.2f}x" if dramatiq else "-"
        met = verdict(ours >= goal and ours > dramatiq)
        what = f"calls in flight per GB: {lines[key]['label']} (vs Dramatiq)"
        rows.append((what, f"{ours:.0f}", f"{dramatiq:.0f}", ratio, target, met))
    for key in ("plain", "dramatiq"):
        if key in lines:
            figure = f"{lines[key]['per_gb']:.0f}"
            rows.append((f"calls in flight per GB: {lines[key]['label']}", figure, "", "", "(reference)", ""))
    return rows


def run_row(run: dict[str, Any] | None, prefix: str, what: str, target: float) -> Row:
    """A row of bench.run's table (ours against plain RQ) against a ratio target."""
    wanted = f">= {target}x"
    found = next((r for r in (run or {}).get("rows", []) if str(r["what"]).startswith(prefix)), None)
    if found is None:
        return missing(what, wanted, "bench.run")
    ours, plain = float(found["ours"]), float(found["plain"])
    ratio = ours / plain if plain else 0.0
    unit = found["unit"]
    return (
        what,
        f"{ours:.1f} {unit}",
        f"{plain:.1f} {unit}",
        f"{ratio:.2f}x",
        wanted,
        verdict(ratio >= target),
    )


def embed_rows(embed: dict[str, Any] | None) -> list[Row]:
    """Vectorization through each worker line against the bare pipeline, at the target's documents per job."""
    if embed is None:
        return [missing("vectorization vs bare chunk + embed + upsert", ">= 0.8x", "bench.embed")]
    per_job = str(embed["target_from_documents"])
    chunks = embed["chunks"]
    rows: list[Row] = []
    # The Procfile's default line first, then the slot counts.
    for _, line in sorted(embed["lines"].items(), key=lambda item: (item[0] != "default", item[0])):
        runs = line["runs"].get(per_job)
        if not runs:
            continue
        ratio = median(bare / worker for worker, bare in runs)
        ours, bare = chunks / median(w for w, _ in runs), chunks / median(b for _, b in runs)
        rows.append((f"vectorization, {per_job} documents/job vs bare pipeline: {line['label']}",
                     f"{ours:.0f} chunks/s", f"{bare:.0f} chunks/s", f"{ratio:.2f}x", ">= 0.8x",
                     verdict(ratio >= 0.8)))  # fmt: skip
    return rows


def commands_row(commands: dict[str, Any] | None) -> Row:
    """Redis commands per no-op job, enqueue and run, against plain RQ's."""
    what = "Redis commands per job (enqueue + run) vs plain RQ"
    if commands is None:
        return missing(what, "<= +10", "bench.commands")
    ours, plain = commands["ours"], commands["plain"]
    extra = ours - plain
    return (what, f"{ours:.1f}", f"{plain:.1f}", f"{extra:+.1f}", "<= +10", verdict(extra <= 10))


def table(folder: Path) -> list[str]:
    """The summary table's lines."""
    run = load(folder, "run")
    rows: list[Row] = [
        *in_flight_rows(load(folder, "peers")),
        run_row(run, "POST /api/batches", "POST /api/batches of 200 vs enqueue_many", 0.7),
        *embed_rows(load(folder, "embed")),
        commands_row(load(folder, "commands")),
        run_row(run, "worker throughput, noop", "no-op worker (Procfile line) vs plain `rq worker`", 0.9),
    ]
    head: Row = ("issue 15 target", "ours", "baseline", "ratio", "target", "")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def cell(row: Row) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    return [cell(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(cell(r) for r in rows)]


def main() -> None:
    """Print the summary of the results directory given as the only argument."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench.summary <results dir>")
    print("\nissue 15 targets (one bench/run)\n")
    print("\n".join(table(Path(sys.argv[1]))))


if __name__ == "__main__":
    main()
