"""One error contract: every exception class has its problem; every stored callback path resolves."""

from __future__ import annotations

import inspect

from redis.exceptions import ConnectionError as RedisConnectionError
from rq.utils import import_attribute

from feynman_jobs import errors, job_events
from feynman_jobs.lifecycle import outcomes
from feynman_jobs.queueing.catalog import CALLBACKS
from feynman_jobs.web.problems import PROBLEMS, kind_of


def test_every_exception_class_has_its_own_problem() -> None:
    classes = [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, Exception) and cls.__module__ == errors.__name__
    ]
    assert len(classes) >= 15
    missing = [cls.__name__ for cls in classes if cls not in PROBLEMS]
    assert missing == []


def test_lookup_follows_the_class_hierarchy() -> None:
    assert kind_of(errors.UnknownJobType("x")).slug == "unknown-job-type"  # type: ignore[union-attr]
    assert kind_of(RedisConnectionError("down")).status == 503  # type: ignore[union-attr]
    assert kind_of(ValueError("not ours")) is None


def test_callbacks_stored_in_job_hashes_resolve_to_the_outcome_recorders() -> None:
    assert import_attribute(CALLBACKS.on_success.name) is outcomes.on_success
    assert import_attribute(CALLBACKS.on_failure.name) is outcomes.on_failure
    assert import_attribute(CALLBACKS.on_stopped.name) is outcomes.on_stopped
    # Jobs written before the layout moved name feynman_jobs.job_events; the shim keeps them working.
    for name in ("on_success", "on_failure", "on_stopped"):
        assert import_attribute(f"feynman_jobs.job_events.{name}") is getattr(outcomes, name)
    assert job_events.__all__ == ["on_failure", "on_stopped", "on_success"]
