"""`feynman-jobs budget …` and `feynman-jobs limits …`: read and set budgets and rate limits at run time,
the same functions `/api/budget` and `/api/limits` use."""

from __future__ import annotations

import getpass
import socket

import click
from redis.exceptions import RedisError

from feynman_jobs.cli.context import Context, echo_json, fail
from feynman_jobs.costs import budget, control, ratelimit
from feynman_jobs.errors import FeynmanError


def _who() -> str:
    """Who a change from the command line is logged as: the local user on this host (no credential)."""
    return f"cli:{getpass.getuser()}@{socket.gethostname()}"


def _amount(value: str) -> float | None:
    """A USD amount, or `none` for no limit."""
    if value.lower() == "none":
        return None
    try:
        amount = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'none'") from None
    if amount < 0:
        raise click.BadParameter("a budget is not negative")
    return amount


@click.group("budget", invoke_without_command=True)
@click.pass_context
def budget_group(ctx: click.Context) -> None:
    """Each budget in force: limit, spent, reserved, remaining, reset time (also `budget show`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(budget_show)


@budget_group.command("show")
@click.pass_obj
def budget_show(obj: Context) -> None:
    """Each budget in force: limit, spent, reserved, remaining, reset time."""
    try:
        echo_json([window.as_dict() for window in budget.windows(obj.redis, obj.settings)])
    except RedisError as exc:
        raise fail(exc) from None


@budget_group.command("set")
@click.option("--total", "total", help="USD, or 'none' for no limit")
@click.option("--daily", "daily", help="USD, or 'none' for no limit")
@click.option("--hourly", "hourly", help="USD, or 'none' for no limit")
@click.pass_obj
def budget_set(obj: Context, total: str | None, daily: str | None, hourly: str | None) -> None:
    """Set budgets for every process at once, overriding the environment; print them."""
    given = {"total": total, "daily": daily, "hourly": hourly}
    changes = {name: _amount(value) for name, value in given.items() if value is not None}
    if not changes:
        raise click.UsageError("give --total, --daily or --hourly")
    try:
        control.set_budgets(obj.redis, obj.settings, changes, who=_who())
        echo_json({name: item.value for name, item in control.budgets(obj.redis, obj.settings).items()})
    except (RedisError, FeynmanError) as exc:
        raise fail(exc) from None


@budget_group.command("reset-total")
@click.pass_obj
def budget_reset_total(obj: Context) -> None:
    """Start the total budget afresh (the ledger keeps its history)."""
    try:
        click.echo(f"total budget reset at {control.reset_total(obj.redis, who=_who())}")
    except RedisError as exc:
        raise fail(exc) from None


@click.group("limits", invoke_without_command=True)
@click.pass_context
def limits_group(ctx: click.Context) -> None:
    """Each rate limit: limit and source, used in its window, when it frees up (also `limits show`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(limits_show)


@limits_group.command("show")
@click.pass_obj
def limits_show(obj: Context) -> None:
    """Each rate limit: limit and source, used in its window, when it frees up."""
    try:
        echo_json(ratelimit.usage(obj.redis, obj.settings))
    except RedisError as exc:
        raise fail(exc) from None


@limits_group.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KIND.NAME=VALUE...")
@click.pass_obj
def limits_set(obj: Context, assignments: tuple[str, ...]) -> None:
    """Set rate limits for every process at once, e.g. `chat.rpm=500 embeddings.tpm=none`."""
    known = {f"{kind}.{name}" for kind in control.KINDS for name in control.LIMITS}
    changes: dict[str, int | None] = {}
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        if name not in known or not value:
            raise click.BadParameter(
                f"{assignment!r}: expected one of {', '.join(sorted(known))} =N or =none"
            )
        if value.lower() == "none":
            changes[name] = None
        elif value.isdigit() and int(value) > 0:
            changes[name] = int(value)
        else:
            raise click.BadParameter(f"{assignment!r}: a limit is a whole number above 0, or none")
    try:
        control.set_limits(obj.redis, changes, who=_who())
        echo_json(ratelimit.usage(obj.redis, obj.settings))
    except RedisError as exc:
        raise fail(exc) from None
