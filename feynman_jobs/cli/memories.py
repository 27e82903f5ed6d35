"""`feynman-jobs memories`: forget a learner; move memories of the old shared layout to their learners."""

from __future__ import annotations

import click
from redis.exceptions import RedisError

from feynman_jobs.cli.context import Context, echo_json, fail
from feynman_jobs.errors import FeynmanError
from feynman_jobs.lifecycle import submit
from feynman_jobs.memory.records import forget_learner, migrate_legacy
from feynman_jobs.queueing.requests import EnqueueRequest


@click.group("memories")
def memories_group() -> None:
    """Learners' memories: delete them, migrate them."""


@memories_group.command("delete")
@click.argument("learner_id")
@click.pass_obj
def delete_command(obj: Context, learner_id: str) -> None:
    """Delete every memory record and vector of LEARNER_ID now; print what went."""
    try:
        echo_json(forget_learner(obj.redis, learner_id))
    except RedisError as exc:
        raise fail(exc) from None


@memories_group.command("migrate")
@click.option("--delete-unowned", is_flag=True, help="Also delete old records that name no learner.")
@click.pass_obj
def migrate_command(obj: Context, delete_unowned: bool) -> None:
    """Move memories written before they were kept per learner, and index each in its learner's space.

    Each moved memory is vectorized again by a vectorize_documents job (workers must run).
    """
    try:
        done = migrate_legacy(obj.redis, delete_unowned=delete_unowned)
        jobs = [
            submit.submit(
                obj.redis,
                obj.settings,
                EnqueueRequest(
                    type="vectorize_documents", payload={"memory_id": memory_id, "learner_id": learner_id}
                ),
            ).job.id
            for learner_id, memory_id in done.moved
        ]
    except (FeynmanError, RedisError) as exc:
        raise fail(exc) from None
    echo_json(
        {
            "moved": len(done.moved),
            "vectorize_jobs": jobs,
            "unowned": done.unowned,
            "unowned_deleted": delete_unowned,
            "shared_chunks_dropped": done.shared_chunks_dropped,
        }
    )
