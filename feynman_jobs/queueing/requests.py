"""Request and response models of the HTTP API; the same models validate input and describe it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    StringConstraints,
    ValidationError,
    create_model,
    model_validator,
)

from feynman_jobs.errors import FieldError, InvalidRequest
from feynman_jobs.queueing.catalog import CATALOG
from feynman_jobs.queueing.payloads import Namespace, text_only

JobId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
QueueName = Literal["high", "default", "low"]
#: The longest delay a caller may ask for.
MAX_DELAY_S = 30 * 24 * 3600
MAX_DEPENDENCIES = 50


class EnqueueRequest(BaseModel):
    """One job to enqueue: only `type` and `payload` are required (DESIGN §5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    payload: dict[str, JsonValue]
    queue: QueueName | None = None
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    depends_on: Annotated[list[JobId], Field(max_length=MAX_DEPENDENCIES)] | None = None
    #: Run even when a dependency failed (by default the job waits, deferred, for a requeue).
    allow_failed_dependencies: Annotated[bool, Field(strict=True)] = False
    run_at: Annotated[AwareDatetime, BeforeValidator(text_only)] | None = None
    # strict: JSON `false` or `"3"` is not a number here, as the OpenAPI document says.
    delay_s: Annotated[float, Field(ge=0, le=MAX_DELAY_S, strict=True)] | None = None
    timeout_s: Annotated[int, Field(ge=1, strict=True)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=10, strict=True)] | None = None
    meta: dict[str, JsonValue] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> EnqueueRequest:
        if self.run_at is not None and self.delay_s is not None:
            raise ValueError("give run_at or delay_s, not both")
        if self.depends_on and (self.run_at is not None or self.delay_s is not None):
            raise ValueError("depends_on cannot be combined with run_at or delay_s")
        return self


def _typed_request(job_type: str) -> type[EnqueueRequest]:
    spec = CATALOG[job_type]
    job_literal: Any = Literal[job_type]
    return create_model(
        f"Enqueue{spec.payload_model.__name__}",
        __base__=EnqueueRequest,
        __doc__=f"A `{job_type}` job and its payload.",
        type=(job_literal, ...),
        payload=(spec.payload_model, ...),
    )


#: The enqueue body as the OpenAPI document shows it: EnqueueRequest narrowed to each catalog type and
#: its payload model (the API validates the same two models one after the other).
_ONE_OF_TYPES: Any = Annotated[
    Union[tuple(_typed_request(name) for name in CATALOG)],  # noqa: UP007
    Field(discriminator="type"),
]
TypedEnqueueRequest: type[BaseModel] = create_model(
    "TypedEnqueueRequest", __base__=RootModel, __doc__="One job to enqueue.", root=(_ONE_OF_TYPES, ...)
)


JobStatusWord = Literal[
    "queued", "scheduled", "deferred", "started", "finished", "failed", "stopped", "canceled"
]
#: Most jobs one batch may hold.
MAX_BATCH_JOBS = 1000


class BatchRequest(BaseModel):
    """Many jobs enqueued together: all valid or none enqueued."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: Annotated[list[dict[str, JsonValue]], Field(min_length=1, max_length=MAX_BATCH_JOBS)]


class ListJobsQuery(BaseModel):
    """Filters and paging of GET /api/jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    queue: QueueName | None = None
    status: JobStatusWord | None = None
    type: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    limit: Annotated[int, Field(ge=1, le=200)] = 50
    cursor: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")] | None = None


class PauseRequest(BaseModel):
    """Optional body of POST /api/queues/pause."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    duration_s: Annotated[int, Field(ge=1, le=7 * 24 * 3600, strict=True)] | None = None


class StatsQuery(BaseModel):
    """The window of GET /api/stats, in seconds (default one hour)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] = 3600


class CostsQuery(BaseModel):
    """GET /api/costs: rollups of one granularity whose window starts in [since, until)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granularity: Literal["hour", "day"] = "hour"
    since: Annotated[AwareDatetime, BeforeValidator(text_only)] | None = None
    until: Annotated[AwareDatetime, BeforeValidator(text_only)] | None = None


class Progress(BaseModel):
    """Progress reported from inside a running job."""

    fraction: float
    message: str | None = None
    updated_at: datetime | None = None


class JobError(BaseModel):
    """Why a job failed: the exception's type and message, never a traceback."""

    type: str
    message: str


class Cost(BaseModel):
    """Model usage recorded for this job."""

    tokens_in: int = 0
    tokens_out: int = 0
    usd: float = 0.0
    calls: int = 0


class Held(BaseModel):
    """Why a job waits (a budget or a rate limit) and when it runs again; it is not failed."""

    reason: str
    until: datetime


class JobStatusDocument(BaseModel):
    """Everything a caller may want to know about one job (DESIGN §4)."""

    id: str
    type: str
    queue: str
    status: str
    attempts: int
    max_retries: int
    retries_left: int
    progress: Progress | None
    created_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    result: Any | None
    error: JobError | None
    depends_on: list[str]
    follow_up: list[str]
    batch_id: str | None
    cost: Cost
    worker_name: str | None
    held: Held | None = None
    meta: dict[str, Any]


#: Longest search query, in characters.
MAX_QUERY_CHARS = 2000
MAX_SEARCH_K = 50


class SearchQuery(BaseModel):
    """`GET /api/memories/search` parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS)]
    k: Annotated[int, Field(ge=1, le=MAX_SEARCH_K)] = 5
    namespace: Namespace = "memories"


class SearchHit(BaseModel):
    """One chunk found: its document, position, cosine score, text and the document's metadata."""

    doc_id: str
    chunk: int
    score: float
    text: str
    metadata: dict[str, Any]


class SearchResults(BaseModel):
    """The hits of one search, best first."""

    namespace: str
    query: str
    k: int
    embedder: str
    hits: list[SearchHit]


def pointer(loc: tuple[int | str, ...], prefix: tuple[str, ...] = ()) -> str:
    """A JSON pointer (RFC 6901, URI fragment form) for a pydantic error location."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in (*prefix, *loc)]
    return "#/" + "/".join(parts) if parts else "#"


def field_errors(exc: ValidationError, prefix: tuple[str, ...] = ()) -> list[FieldError]:
    """Pydantic's errors as RFC 9457-style `errors` entries."""
    return [FieldError(pointer(tuple(err["loc"]), prefix), err["msg"]) for err in exc.errors()]


def parse_search_query(args: dict[str, list[str]]) -> SearchQuery:
    """Validate query parameters as a SearchQuery (raises InvalidRequest); each may appear once."""
    repeated = [
        FieldError(f"#/{name}", "give this parameter once")
        for name, values in args.items()
        if len(values) > 1
    ]
    if repeated:
        raise InvalidRequest("the search query is invalid", repeated)
    try:
        return SearchQuery.model_validate({name: values[0] for name, values in args.items()})
    except ValidationError as exc:
        raise InvalidRequest("the search query is invalid", field_errors(exc)) from None


def parse_enqueue_request(body: object) -> EnqueueRequest:
    """Validate a decoded JSON body as an EnqueueRequest (raises InvalidRequest)."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object", [FieldError("#", "not an object")])
    try:
        return EnqueueRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest("the job request is invalid", field_errors(exc)) from None
