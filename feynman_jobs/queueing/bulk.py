"""A batch's queued jobs written by one Lua script per queue, the fields every job shares sent once.

RQ's enqueue writes each job with `HSET status`, `HSET` of the whole hash (`Job.to_dict`) and `RPUSH`
of its id: about 55 arguments a job, which redis-py encodes one at a time in Python — the largest
cost of a batch of 200 (docs/benchmarks.md). Here RQ still decides every write: its enqueue runs
against a `Recorder` instead of the pipeline. When a job's recorded writes are exactly those three,
the jobs of one queue go to Redis as one EVAL whose arguments carry the fields equal in every hash
(callbacks, timeouts, TTLs, retry policy, origin, status) once and each job's own fields after, and
the script writes the same hashes, fields in the same order, and pushes the ids in the same order.
Anything else RQ records (a TTL's EXPIRE, a push to the front) is replayed on the pipeline as it was.
The EVAL runs inside the writer's MULTI/EXEC (EVAL, not EVALSHA: a script cache flushed between a
SCRIPT LOAD and the EXEC would fail that one command and let the rest of the batch through).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from redis.client import Pipeline

#: Below this many jobs in one queue, the recorded writes are replayed: the script text costs more.
MIN_JOBS = 2
#: Ids per RPUSH inside the script (Lua's `unpack` has a limit of a few thousand values).
PUSH_CHUNK = 500

# KEYS[1]: the queue's list; KEYS[2..]: the jobs' hashes, in enqueue order.
# ARGV: f, the f field names, the f shared values (a placeholder where a field is per job), p, the p
# positions (1-based) of the per-job fields, then per job its id and its p values.
_WRITE = """
local f = tonumber(ARGV[1])
local fields = {}
for i = 1, f do
  fields[2 * i - 1] = ARGV[1 + i]
  fields[2 * i] = ARGV[1 + f + i]
end
local p = tonumber(ARGV[2 * f + 2])
local slots = {}
for i = 1, p do slots[i] = 2 * tonumber(ARGV[2 * f + 2 + i]) end
local at = 2 * f + p + 3
local ids = {}
for k = 2, #KEYS do
  ids[k - 1] = ARGV[at]
  for i = 1, p do fields[slots[i]] = ARGV[at + i] end
  at = at + p + 1
  redis.call('HSET', KEYS[k], unpack(fields))
end
for i = 1, #ids, tonumber(ARGV[at]) do
  redis.call('RPUSH', KEYS[1], unpack(ids, i, math.min(i + tonumber(ARGV[at]) - 1, #ids)))
end
return #ids
"""


class Recorder:
    """Stands in for a pipeline while RQ enqueues one job: keeps each call instead of sending it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            self.calls.append((name, args, kwargs))

        return record

    def as_pipeline(self) -> Pipeline:
        """This recorder, typed as what RQ expects."""
        return cast(Pipeline, self)


@dataclass(frozen=True)
class _Queued:
    """One queued job's writes: its hash's fields, and the queue its id is pushed to."""

    queue_key: str
    job_key: str
    job_id: str
    fields: dict[str, Any]


@dataclass
class _Group:
    """Queued jobs of one queue, one after the other, whose hashes have the same fields in the same order."""

    names: tuple[str, ...]
    job_keys: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    recorded: list[Recorder] = field(default_factory=list)


class BulkWriter:
    """Collects the recorded enqueues of a transaction, then writes them with one EVAL per group."""

    def __init__(self, pipe: Pipeline) -> None:
        self._pipe = pipe
        #: The jobs of each queue not yet written, all of one shape.
        self._groups: dict[str, _Group] = {}

    def add(self, recorder: Recorder) -> None:
        """Fold one job's recorded writes into its group, or replay them when they are not the usual three."""
        queued = _queued_job(recorder.calls)
        if queued is None:
            # A push of its own could reorder a queue against the folded pushes: write those first.
            self.flush()
            self._replay(recorder)
            return
        names = tuple(queued.fields)
        group = self._groups.get(queued.queue_key)
        if group is not None and group.names != names:
            # Jobs of another shape on this queue: theirs go first, so the queue keeps the order sent.
            self._write(queued.queue_key, self._groups.pop(queued.queue_key))
            group = None
        if group is None:
            group = self._groups[queued.queue_key] = _Group(names)
        group.job_keys.append(queued.job_key)
        group.ids.append(queued.job_id)
        group.rows.append(list(queued.fields.values()))
        group.recorded.append(recorder)

    def flush(self) -> None:
        """Queue the writes of every group on the pipeline (an EVAL each, or the plain commands)."""
        for queue_key, group in self._groups.items():
            self._write(queue_key, group)
        self._groups.clear()

    def _write(self, queue_key: str, group: _Group) -> None:
        if len(group.rows) < MIN_JOBS:
            for recorder in group.recorded:
                self._replay(recorder)
        else:
            self._pipe.eval(_WRITE, 1 + len(group.job_keys), queue_key, *group.job_keys, *_args(group))

    def _replay(self, recorder: Recorder) -> None:
        for name, args, kwargs in recorder.calls:
            getattr(self._pipe, name)(*args, **kwargs)


def _queued_job(calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> _Queued | None:
    """What a queued job's recorded writes are, or None when they are anything but `HSET key status s`,
    `HSET key mapping=…`, `RPUSH queue id` (the fields keep status first, where RQ's first HSET puts it)."""
    match calls:
        case [
            ("hset", (key, "status", status), no_options),
            ("hset", (same_key,), {"mapping": dict() as mapping} as options),
            ("rpush", (queue_key, job_id), no_push_options),
        ] if same_key == key and len(options) == 1 and not no_options and not no_push_options:
            return _Queued(queue_key, key, job_id, {"status": status, **mapping})
    return None


def _args(group: _Group) -> list[Any]:
    """The script's ARGV for one group: names, shared values, per-job positions, then each job's values."""
    first = group.rows[0]
    own = [
        i
        for i, value in enumerate(first)
        if any(type(row[i]) is not type(value) or row[i] != value for row in group.rows[1:])
    ]
    shared = ["" if i in own else value for i, value in enumerate(first)]
    args: list[Any] = [len(group.names), *group.names, *shared, len(own), *[i + 1 for i in own]]
    for job_id, row in zip(group.ids, group.rows, strict=True):
        args.append(job_id)
        args.extend(row[i] for i in own)
    args.append(PUSH_CHUNK)
    return args
