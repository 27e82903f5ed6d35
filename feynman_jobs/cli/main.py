"""The `feynman-jobs` command: enqueue, status, wait, doctor and periodic-job registration from a shell."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from redis.exceptions import RedisError

from feynman_jobs.cli import memories, money, operations
from feynman_jobs.cli.context import Context, echo_json, fail
from feynman_jobs.errors import FeynmanError
from feynman_jobs.lifecycle import submit
from feynman_jobs.lifecycle.status import Progress, describe, get_status
from feynman_jobs.logs import configure_logging
from feynman_jobs.ops import doctor
from feynman_jobs.processes import scheduler, schedules
from feynman_jobs.queueing.catalog import EVERYONE
from feynman_jobs.queueing.requests import parse_enqueue_request

_NO_PROGRESS = Progress(fraction=0.0)


@click.group()
@click.option("--redis-url", envvar="REDIS_URL", help="Redis URL (default: REDIS_URL, else localhost).")
@click.pass_context
def main(ctx: click.Context, redis_url: str | None) -> None:
    """feynman_jobs: background jobs for the Feynman tutor, on RQ and Redis."""
    try:
        # doctor reports a budget with an unpriced model as a finding instead of refusing to start.
        ctx.obj = Context(redis_url, check_prices=ctx.invoked_subcommand != "doctor")
    except FeynmanError as exc:
        raise fail(exc) from None
    ctx.call_on_close(ctx.obj.close)
    configure_logging(ctx.obj.settings.log_level, ctx.obj.settings.log_format)


@main.command("enqueue")
@click.argument("job_type")
@click.option("--payload", required=True, help="The payload as JSON, or @path to a JSON file.")
@click.option("--queue", type=click.Choice(["high", "default", "low"]), default=None)
@click.pass_obj
def enqueue_command(obj: Context, job_type: str, payload: str, queue: str | None) -> None:
    """Enqueue a job of JOB_TYPE and print its status document."""
    try:
        text = Path(payload[1:]).read_text("utf-8") if payload.startswith("@") else payload
        body: dict[str, Any] = {"type": job_type, "payload": json.loads(text)}
        if queue:
            body["queue"] = queue
        # The CLI is the operator's own: it may enqueue every type, maintenance included.
        request = parse_enqueue_request(body)
        submitted = submit.submit(obj.redis, obj.settings, request, audiences=EVERYONE)
        echo_json(describe(obj.redis, submitted.job).model_dump(mode="json"))
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read the payload: {exc}") from None
    except (FeynmanError, RedisError) as exc:
        raise fail(exc) from None


@main.command("status")
@click.argument("job_id")
@click.pass_obj
def status_command(obj: Context, job_id: str) -> None:
    """Print the status document of a job."""
    try:
        echo_json(get_status(obj.redis, job_id).model_dump(mode="json"))
    except (FeynmanError, RedisError) as exc:
        raise fail(exc) from None


@main.command("scheduler")
@click.option(
    "--interval", type=float, default=5.0, show_default=True, help="Seconds between checks for due jobs."
)
@click.pass_obj
def scheduler_command(obj: Context, interval: float) -> None:
    """Run the scheduler process: periodic jobs to their queues and the service's upkeep (abandoned
    jobs, leaked reservations), through Redis outages."""
    scheduler.run(obj.settings, interval)


#: Statuses after which a job will not change by itself.
ENDED = ("finished", "failed", "stopped", "canceled")


@main.command("wait")
@click.argument("job_id")
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between polls.")
@click.pass_obj
def wait_command(obj: Context, job_id: str, timeout: float | None, interval: float) -> None:
    """Show a progress bar until the job ends; print its status document; exit 1 unless it finished."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        with click.progressbar(length=1000, label=job_id, file=sys.stderr) as bar:
            while True:
                document = get_status(obj.redis, job_id)
                fraction = 1.0 if document.status in ENDED else (document.progress or _NO_PROGRESS).fraction
                bar.update(round(min(max(fraction, 0.0), 1.0) * 1000) - bar.pos)
                if document.status in ENDED:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise click.ClickException(f"job {job_id} is still {document.status} after {timeout:g} s")
                time.sleep(interval)
    except (FeynmanError, RedisError) as exc:
        raise fail(exc) from None
    echo_json(document.model_dump(mode="json"))
    if document.status != "finished":
        error = f": {document.error.type}: {document.error.message}" if document.error else ""
        raise click.ClickException(f"job {job_id} {document.status}{error}")


@main.command("doctor")
@click.pass_obj
def doctor_command(obj: Context) -> None:
    """Check Redis (persistence, eviction, exposure), access, workers, the scheduler, serialized job data and
    versions; exit 1 if anything is wrong (a warning does not count)."""
    findings = doctor.diagnose(obj.redis, obj.settings)
    for finding in findings:
        click.echo(f"{finding.label:<4} {finding.check}: {finding.detail}")
    failed = [finding for finding in findings if finding.failed]
    if failed:
        raise click.ClickException(f"{len(failed)} problem(s) found")


@main.group("schedules")
def schedules_group() -> None:
    """Periodic jobs held by rq-scheduler."""


@schedules_group.command("sync")
@click.pass_obj
def schedules_sync(obj: Context) -> None:
    """Register every periodic job under its stable id (safe to run at every start)."""
    try:
        for periodic_id in schedules.sync(obj.redis):
            click.echo(periodic_id)
    except RedisError as exc:
        raise fail(exc) from None


@schedules_group.command("list")
@click.pass_obj
def schedules_list(obj: Context) -> None:
    """List the periodic jobs with their next run time."""
    try:
        echo_json(schedules.listing(obj.redis))
    except RedisError as exc:
        raise fail(exc) from None


main.add_command(operations.queues_command)
main.add_command(operations.costs_command)
main.add_command(money.budget_group)
main.add_command(money.limits_group)
main.add_command(operations.pause_command)
main.add_command(operations.resume_command)
main.add_command(memories.memories_group)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
