"""The enqueue request: one job (or a batch of them) as a client asks for it, validated and documented.

The same models validate the API's bodies, the CLI's input and write the OpenAPI document.
"""

from __future__ import annotations

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

from feynman_jobs.errors import InvalidRequest, field_errors
from feynman_jobs.queueing.catalog import CATALOG, MAX_RETRIES_CAP, public_types
from feynman_jobs.queueing.payloads import text_only
from feynman_jobs.queueing.wiring import JOB_ID_PATTERN, QueueName

#: A job's name inside its batch, for `depends_on: ["ref:<name>"]` (queueing/graph.py).
REF_PATTERN = r"[A-Za-z0-9_.-]{1,100}"
REF_PREFIX = "ref:"
Ref = Annotated[str, StringConstraints(pattern=f"^{REF_PATTERN}$")]
#: An existing job's id, or `ref:<name>` of another job of the same batch.
Dependency = Annotated[str, StringConstraints(pattern=f"^({JOB_ID_PATTERN}|{REF_PREFIX}{REF_PATTERN})$")]
#: The longest delay a caller may ask for.
MAX_DELAY_S = 30 * 24 * 3600
MAX_DEPENDENCIES = 50


#: The job endings a webhook can be sent for (RQ's end states).
WebhookEvent = Literal["finished", "failed", "stopped", "canceled"]
WEBHOOK_EVENTS: tuple[WebhookEvent, ...] = ("finished", "failed", "stopped", "canceled")


class Webhook(BaseModel):
    """Where to POST the job's status document when it ends (signed, Standard Webhooks)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, StringConstraints(min_length=1, max_length=2000, pattern=r"^https?://")]
    #: The endings to be told about; all of them when left out.
    events: Annotated[list[WebhookEvent], Field(min_length=1, max_length=4)] = Field(
        default_factory=lambda: list(WEBHOOK_EVENTS)
    )


class EnqueueRequest(BaseModel):
    """One job to enqueue: only `type` and `payload` are required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    payload: dict[str, JsonValue]
    queue: QueueName | None = None
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=255)] | None = None
    #: In a batch, this job's name for the others' `depends_on` ("ref:<name>").
    ref: Ref | None = None
    depends_on: Annotated[list[Dependency], Field(max_length=MAX_DEPENDENCIES)] | None = None
    #: Run even when a dependency failed (by default the job waits, deferred, for a requeue).
    allow_failed_dependencies: Annotated[bool, Field(strict=True)] = False
    run_at: Annotated[AwareDatetime, BeforeValidator(text_only)] | None = None
    # strict: JSON `false` or `"3"` is not a number here, as the OpenAPI document says.
    delay_s: Annotated[float, Field(ge=0, le=MAX_DELAY_S, strict=True)] | None = None
    timeout_s: Annotated[int, Field(ge=1, strict=True)] | None = None
    max_retries: Annotated[int, Field(ge=0, le=MAX_RETRIES_CAP, strict=True)] | None = None
    meta: dict[str, JsonValue] | None = None
    webhook: Webhook | None = None

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


#: The enqueue body as the OpenAPI document shows it: EnqueueRequest narrowed to each public catalog type
#: and its payload model (the API validates the same two models one after the other).
_ONE_OF_TYPES: Any = Annotated[
    Union[tuple(_typed_request(name) for name in public_types())],  # noqa: UP007
    Field(discriminator="type"),
]
TypedEnqueueRequest: type[BaseModel] = create_model(
    "TypedEnqueueRequest", __base__=RootModel, __doc__="One job to enqueue.", root=(_ONE_OF_TYPES, ...)
)


#: Most jobs one batch may hold.
MAX_BATCH_JOBS = 1000


class BatchRequest(BaseModel):
    """Many jobs enqueued together: all valid or none enqueued."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: Annotated[list[EnqueueRequest], Field(min_length=1, max_length=MAX_BATCH_JOBS)]


#: The batch body as the OpenAPI document shows it, and the one pass that validates a valid batch: each
#: job's envelope and payload together (planning.validate_payload then only dumps the payload).
TypedBatchRequest: type[BaseModel] = create_model(
    "TypedBatchRequest",
    __config__=ConfigDict(extra="forbid", frozen=True),
    __doc__=BatchRequest.__doc__,
    jobs=(Annotated[list[_ONE_OF_TYPES], Field(min_length=1, max_length=MAX_BATCH_JOBS)], ...),
)


def parse_batch_request(body: object) -> BatchRequest:
    """Validate a decoded JSON body as a batch, each job once (raises InvalidRequest).

    A valid batch passes TypedBatchRequest alone. Anything it refuses (an internal or unknown type, a
    bad payload, a bad field) is validated again the two-step way, so the errors a caller sees name
    the same fields as POST /api/jobs: the envelope here, the payload by its model when it is planned.
    """
    try:
        typed: Any = TypedBatchRequest.model_validate(body)
        return BatchRequest.model_construct(jobs=list(typed.jobs))
    except ValidationError:
        pass  # the caller gets the errors of the two-step validation below
    try:
        return BatchRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest("the request body is invalid", field_errors(exc)) from None


def parse_enqueue_request(body: object) -> EnqueueRequest:
    """Validate a decoded JSON body as an EnqueueRequest (raises InvalidRequest)."""
    try:
        return EnqueueRequest.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest("the job request is invalid", field_errors(exc)) from None
