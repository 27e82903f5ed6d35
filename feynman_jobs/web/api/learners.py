"""`DELETE /api/learners/<learner_id>/memories`: forget a learner, as a job whose result counts what went."""

from __future__ import annotations

from typing import Any

from flask import url_for
from pydantic import BaseModel, ConfigDict

from feynman_jobs.lifecycle import submit
from feynman_jobs.lifecycle.status import JobStatusDocument, describe
from feynman_jobs.queueing.catalog import EVERYONE
from feynman_jobs.queueing.payloads import Identifier
from feynman_jobs.queueing.requests import EnqueueRequest
from feynman_jobs.web.access import clients, current_caller
from feynman_jobs.web.blueprints import api_blueprint
from feynman_jobs.web.extension import extension
from feynman_jobs.web.openapi import documented
from feynman_jobs.web.parsing import validate

bp = api_blueprint("feynman_learners", __name__)


class LearnerPath(BaseModel):
    """The learner a path names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    learner_id: Identifier


@bp.delete("/learners/<learner_id>/memories")
@documented(
    responses={202: JobStatusDocument},
    problems={422: "`invalid-request`: the learner id is empty or longer than 200 characters"},
    response_headers={"Location": "the URL of the deletion job's status document"},
)
@clients
def delete_learner_memories(learner_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Delete the learner's memory records and vectors, as a job: 202; its result counts what went."""
    path = validate(LearnerPath, {"learner_id": learner_id}, what="path", prefix=("path",))
    job_request = EnqueueRequest(type="delete_learner_memories", payload={"learner_id": path.learner_id})
    ext = extension()
    # An internal job type: only this route (and the CLI) may enqueue it.
    submitted = submit.submit(
        ext.redis, ext.settings, job_request, audiences=EVERYONE, owner=current_caller().owner
    )
    document = describe(ext.redis, submitted.job, fresh=True)
    location = url_for("feynman_api.read_job", job_id=submitted.job.id)
    return document.model_dump(mode="json"), 202, {"Location": location}
