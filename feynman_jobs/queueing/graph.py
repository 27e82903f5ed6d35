"""A dependency graph inside one batch: `ref` names a job, `depends_on: ["ref:<name>"]` points at it.

The whole graph is checked before anything is planned or written: a name used twice, a `ref:` that
names no job of the batch, and a cycle are each a 422 naming the positions (JSON pointers). Job ids
are made here, so each `ref:` becomes the id of the job it names (architecture §3).
"""

from __future__ import annotations

import uuid

from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.queueing.requests import REF_PREFIX, EnqueueRequest


def refuse_refs(request: EnqueueRequest) -> None:
    """InvalidRequest if a single job (not in a batch) uses `ref` or `ref:` dependencies."""
    errors = [FieldError("#/ref", "names a job inside a batch only")] if request.ref else []
    errors += [
        FieldError(f"#/depends_on/{k}", "ref: names a job of the same batch; use POST /api/batches")
        for k, dep in enumerate(request.depends_on or [])
        if dep.startswith(REF_PREFIX)
    ]
    if errors:
        raise InvalidRequest("ref and ref: dependencies are for jobs of one batch", errors)


def resolve(requests: list[EnqueueRequest]) -> tuple[list[str], list[EnqueueRequest]]:
    """New job ids for the batch's jobs, and the requests with every `ref:` replaced by an id.

    Raises InvalidRequest listing every duplicate name, unknown reference and cycle.
    """
    names: dict[str, int] = {}
    errors: list[FieldError] = []
    for index, request in enumerate(requests):
        if request.ref is None:
            continue
        if request.ref in names:
            first = names[request.ref]
            errors.append(FieldError(f"#/jobs/{index}/ref", f"the same ref as #/jobs/{first}/ref"))
        else:
            names[request.ref] = index
    edges: dict[int, list[int]] = {}
    for index, request in enumerate(requests):
        for k, dep in enumerate(request.depends_on or []):
            if not dep.startswith(REF_PREFIX):
                continue
            target = names.get(dep.removeprefix(REF_PREFIX))
            at = f"#/jobs/{index}/depends_on/{k}"
            if target is None:
                errors.append(FieldError(at, f"no job of this batch has {dep!r}"))
            elif target == index:
                errors.append(FieldError(at, "a job cannot depend on itself"))
            else:
                edges.setdefault(index, []).append(target)
    errors += _cycles(edges)
    if errors:
        raise InvalidRequest("the batch's dependency graph is invalid; nothing was enqueued", errors)
    ids = [str(uuid.uuid4()) for _ in requests]
    resolved = [
        request.model_copy(update={"depends_on": [_resolve(dep, names, ids) for dep in request.depends_on]})
        if request.depends_on
        else request
        for request in requests
    ]
    return ids, resolved


def _resolve(dep: str, names: dict[str, int], ids: list[str]) -> str:
    return ids[names[dep.removeprefix(REF_PREFIX)]] if dep.startswith(REF_PREFIX) else dep


def _cycles(edges: dict[int, list[int]]) -> list[FieldError]:
    """One error per cycle found (depth-first, iterative: a batch holds up to 1,000 jobs)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    errors: list[FieldError] = []
    for start in sorted(edges):
        if state.get(start):
            continue
        path: list[int] = [start]
        stack = [iter(edges.get(start, []))]
        state[start] = 1
        while stack:
            following = next(stack[-1], None)
            if following is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(following) == 1:
                loop = [*path[path.index(following) :], following]
                shown = " -> ".join(f"#/jobs/{i}" for i in loop)
                errors.append(FieldError(f"#/jobs/{following}/depends_on", f"a cycle: {shown}"))
            elif not state.get(following):
                state[following] = 1
                path.append(following)
                stack.append(iter(edges.get(following, [])))
    return errors
