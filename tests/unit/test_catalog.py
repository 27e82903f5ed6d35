"""The job catalog: every documented type, its queue, and retry with exponential backoff."""

from __future__ import annotations

import importlib

import pytest
from pydantic import ValidationError

from feynman_jobs.errors import Forbidden, UnknownJobType
from feynman_jobs.queueing.catalog import (
    CATALOG,
    CLIENTS,
    EVERYONE,
    MAX_BACKOFF_S,
    OPERATORS,
    get_spec,
    public_types,
    type_of,
)
from feynman_jobs.queueing.payloads import ReapAbandonedJobs
from feynman_jobs.queueing.wiring import QUEUE_NAMES


def test_catalog_holds_the_documented_types_on_their_default_queues() -> None:
    assert {name: spec.queue for name, spec in CATALOG.items()} == {
        "analyze_conversation": "high",
        "consolidate_memory": "default",
        "vectorize_documents": "default",
        "rollup_costs": "low",
        "reap_abandoned_jobs": "low",
        "clean_registries": "low",
        "delete_learner_memories": "default",
        "deliver_webhook": "high",
    }
    assert QUEUE_NAMES == ("high", "default", "low")


def test_maintenance_is_internal_and_rollups_are_for_operators() -> None:
    audiences = {name: spec.audience for name, spec in CATALOG.items()}
    assert audiences == {
        "analyze_conversation": "client",
        "consolidate_memory": "client",
        "vectorize_documents": "client",
        "rollup_costs": "operator",
        "reap_abandoned_jobs": "internal",
        "clean_registries": "internal",
        "delete_learner_memories": "internal",
        "deliver_webhook": "internal",
    }
    assert public_types() == [
        "analyze_conversation",
        "consolidate_memory",
        "rollup_costs",
        "vectorize_documents",
    ]
    with pytest.raises(UnknownJobType) as caught:
        get_spec("reap_abandoned_jobs", OPERATORS)
    assert caught.value.errors[0].detail == "must be one of: " + ", ".join(public_types())
    with pytest.raises(Forbidden, match="FEYNMAN_ADMIN_TOKENS"):
        get_spec("rollup_costs", CLIENTS)
    assert get_spec("rollup_costs", OPERATORS).name == "rollup_costs"
    assert get_spec("reap_abandoned_jobs", EVERYONE).name == "reap_abandoned_jobs"


def test_descriptions_carry_the_type_and_ids_never_text() -> None:
    kwargs = {"topic": "<b>光合作用</b>", "conversation": [], "learner_id": "l-1", "memory_id": "mem-1"}
    assert (
        get_spec("consolidate_memory").describe(kwargs)
        == "consolidate_memory(learner_id='l-1', memory_id='mem-1')"
    )


def test_no_protective_bound_is_a_parameter() -> None:
    # Staleness is the worker key's expiry in Redis: nothing a payload could lower.
    with pytest.raises(ValidationError, match="stale_after_s"):
        ReapAbandonedJobs.model_validate({"stale_after_s": 10})
    assert ReapAbandonedJobs.model_validate({}).model_dump() == {}


@pytest.mark.parametrize("job_type", sorted(CATALOG))
def test_every_type_names_an_importable_function_of_the_same_name(job_type: str) -> None:
    spec = CATALOG[job_type]
    module_name, _, func_name = spec.func.rpartition(".")
    assert func_name == job_type
    assert callable(getattr(importlib.import_module(module_name), func_name))
    assert type_of(spec.func) == job_type
    assert 0 < spec.timeout_s <= spec.max_timeout_s


def test_retry_backs_off_exponentially() -> None:
    spec = get_spec("analyze_conversation")
    retry = spec.retry()
    assert retry is not None
    assert retry.max == 3
    assert retry.intervals == [5, 10, 20]
    long_retry = spec.retry(10)
    assert long_retry is not None
    assert long_retry.intervals[-1] == MAX_BACKOFF_S
    assert spec.retry(0) is None


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownJobType) as caught:
        get_spec("summarize_everything")
    assert caught.value.errors[0].pointer == "#/type"
    assert "analyze_conversation" in caught.value.errors[0].detail
    assert "clean_registries" not in caught.value.errors[0].detail
