"""The job catalog: every documented type, its queue, and retry with exponential backoff."""

from __future__ import annotations

import importlib

import pytest

from feynman_jobs.errors import UnknownJobType
from feynman_jobs.queueing.catalog import CATALOG, MAX_BACKOFF_S, get_spec, type_of
from feynman_jobs.queueing.wiring import QUEUE_NAMES


def test_catalog_holds_the_documented_types_on_their_default_queues() -> None:
    assert {name: spec.queue for name, spec in CATALOG.items()} == {
        "analyze_conversation": "high",
        "consolidate_memory": "default",
        "vectorize_documents": "default",
        "rollup_costs": "low",
        "reap_abandoned_jobs": "low",
        "clean_registries": "low",
    }
    assert QUEUE_NAMES == ("high", "default", "low")


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
