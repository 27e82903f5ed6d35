"""Operator commands: queues, costs, pause and resume (the same functions the API uses)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from redis.exceptions import RedisError

from feynman_jobs.cli.context import Context, echo_json, fail
from feynman_jobs.costs import rollups
from feynman_jobs.lifecycle import control
from feynman_jobs.ops import snapshot


@click.command("queues")
@click.pass_obj
def queues_command(obj: Context) -> None:
    """Per queue: depth, registry counts, oldest waiting age; and whether work is paused."""
    try:
        echo_json({"paused": snapshot.paused(obj.redis), "queues": snapshot.queue_summary(obj.redis)})
    except RedisError as exc:
        raise fail(exc) from None


@click.command("costs")
@click.option("--granularity", type=click.Choice(["hour", "day"]), default="hour", show_default=True)
@click.option("--windows", type=click.IntRange(1, 2000), default=24, show_default=True)
@click.pass_obj
def costs_command(obj: Context, granularity: rollups.Granularity, windows: int) -> None:
    """Cost rollups of the last WINDOWS windows; the current one computed live."""
    length = rollups.WINDOW_LENGTH[granularity]
    zone = obj.settings.zone
    current = rollups.window_start(granularity, datetime.now(UTC), zone)
    try:
        stored = rollups.stored(obj.redis, granularity, current - (windows - 1) * length, current)
        echo_json([*stored, rollups.compute_window(obj.redis, granularity, current, zone)])
    except RedisError as exc:
        raise fail(exc) from None


@click.command("pause")
@click.option(
    "--duration", type=click.IntRange(1, 7 * 24 * 3600), default=None, help="Resume by itself after N s."
)
@click.pass_obj
def pause_command(obj: Context, duration: int | None) -> None:
    """Stop workers from taking new jobs (running jobs finish)."""
    try:
        control.pause(obj.redis, duration)
    except RedisError as exc:
        raise fail(exc) from None
    click.echo("paused" + (f" for {duration} s" if duration else " until resumed"))


@click.command("resume")
@click.pass_obj
def resume_command(obj: Context) -> None:
    """Let workers take jobs again."""
    try:
        control.resume(obj.redis)
    except RedisError as exc:
        raise fail(exc) from None
    click.echo("resumed")
