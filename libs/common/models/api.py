"""Request and response bodies of the public REST API (``/api/*``), webhook headers and health answers.

The gateway validates requests with these models, builds (or validates) its
responses with them, and generates its OpenAPI document from the same
classes, so the document cannot drift from the code.  Every request model
rejects unknown fields (no mass assignment), and its booleans and integers
are strict (``"true"`` is not ``true``), as the document says.  Query parameters are in
:mod:`libs.common.models.queries`, auth's bodies in :mod:`libs.common.models.auth`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic_core import PydanticCustomError

from libs.common.models.queries import Cursor, Instant, VersionCursor, encode_cursor
from libs.common.models.schema import never_null
from libs.common.models.workflows import Action, JsonInt, Trigger, WorkflowDefinition, WorkflowStep

STRICT = ConfigDict(extra="forbid")
MAX_INT32 = 2**31 - 1


# --- requests -----------------------------------------------------------------------------------


class WorkflowPatch(BaseModel):
    """``PATCH /api/workflows/{id}``: enable or disable."""

    model_config = STRICT
    is_active: StrictBool


class RollbackRequest(BaseModel):
    model_config = STRICT
    version: JsonInt = Field(ge=1, le=MAX_INT32)


class RunRequest(BaseModel):
    """``POST /api/workflows/{id}/run``: a manual trigger."""

    model_config = STRICT
    payload: Any = None


class DryRunRequest(BaseModel):
    model_config = STRICT
    workflow: WorkflowDefinition
    payload: Any = None


# Dry-run over NATS request/reply (gateway -> executor): the request is DryRunCommand JSON,
# the reply is DryRunResult JSON.  Nothing is recorded.
DRY_RUN_SUBJECT = "svc.executor.dry_run"


class DryRunCommand(BaseModel):
    model_config = STRICT
    tenant_id: uuid.UUID
    workflow: WorkflowDefinition
    payload: Any = None
    # Added later; optional, so a command without it is still valid.  An executor older than this
    # field refuses commands that carry it: roll executors out before gateways.
    timeout_ms: int | None = Field(
        default=None,
        ge=1,
        le=24 * 3600 * 1000,
        description="How long the requester waits for the reply from when it sent the request. The executor "
        "counts it from receipt: a request still waiting for a slot then is not run, one running "
        "then is cancelled.",
    )


# --- responses ----------------------------------------------------------------------------------


def _absent(description: str) -> Any:
    """An optional field left out of the answer, rather than shown as null, when it is ``None``."""
    return Field(default=None, exclude_if=lambda value: value is None, description=description)


class WebhookInfo(BaseModel):
    url: str
    secret: str | None = _absent(
        "Shown only on creation and rotation (and when a PUT or rollback makes the workflow a webhook workflow)."
    )


class WorkflowOut(BaseModel):
    id: uuid.UUID
    name: str
    trigger: Trigger
    action: Action | None = _absent("A single-action workflow's action.")
    steps: list[WorkflowStep] | None = _absent("A multi-step workflow's steps (instead of action).")
    is_active: bool
    version: int
    schedule_error: str | None = None
    webhook: WebhookInfo | None = None
    warnings: list[str] | None = _absent("What the caller should know, e.g. a webhook with verify: none.")
    created_at: datetime
    updated_at: datetime


class WorkflowVersionOut(BaseModel):
    version: int
    definition: WorkflowDefinition
    created_at: datetime
    current: bool


class DeletedOut(BaseModel):
    id: uuid.UUID
    deleted: Literal[True] = True


class SecretSetRequest(BaseModel):
    """``POST /api/workflows/{id}/webhook-secret`` with a body: the secret a sender (GitHub, Stripe,
    Shopify, Slack, or any HMAC-SHA256 sender) gave you; a ``whsec_`` one for Standard Webhooks."""

    model_config = ConfigDict(extra="forbid")
    # Printable ASCII; spaces inside are kept (GitHub's own example secret has them), none at either end.
    secret: str = Field(min_length=8, max_length=1024, pattern=r"^[!-~](?:[ -~]*[!-~])?$")


class SecretRotatedOut(BaseModel):
    webhook: WebhookInfo
    previous_valid_until: datetime | None


class AcceptedEvent(BaseModel):
    """202 of webhook ingest and manual runs."""

    event_id: uuid.UUID
    duplicate: bool = False


class DryRunStepOut(BaseModel):
    id: str
    status: Literal["succeeded", "failed", "filtered"]
    output: Any = None
    error: str | None = None
    duration_ms: int | None = None


class DryRunResult(BaseModel):
    status: str
    output: Any = None
    error: str | None = None
    duration_ms: int | None = None
    error_code: str | None = Field(
        default=None, description="For a template failure: invalid_template, template_limit_exceeded or template_error."
    )
    error_field: str | None = Field(default=None, description="For a template failure: where, e.g. action.config.text.")
    steps: list[DryRunStepOut] | None = _absent(
        "A multi-step workflow: each step that ran, in order (a filter's output is {passed})."
    )
    refused: Literal["tenant_limit", "queue_full", "deadline_passed"] | None = Field(
        default=None,
        description="Executor to gateway: the action was not run, because the tenant has as many "
        "dry-runs as it may, the replica's queue is full, or the request waited past its "
        "deadline. Never set in an API response (those are 429 or 503).",
    )


class ExecutionOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    workflow_id: uuid.UUID
    workflow_version: int
    trigger: str
    status: Literal["running", "succeeded", "failed", "dead", "skipped", "filtered"]
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    error: str | None
    trace_id: str | None


class AttemptOut(BaseModel):
    """One try of the action: a replay starts counting again at 1, so tries are listed in the order they ran."""

    attempt: int
    started_at: datetime
    finished_at: datetime
    outcome: Literal["succeeded", "failed", "dead", "skipped", "filtered"]
    error: str | None = None
    http_status: int | None = Field(default=None, description="The target's HTTP status, when it answered.")
    duration_ms: int | None = None


class StepOut(BaseModel):
    """One step's checkpoint: ``failed`` with ``continued`` was passed over (``continue_on_error``)."""

    id: str
    status: Literal["succeeded", "filtered", "failed", "dead"]
    attempts: int
    continued: bool = False
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    error: str | None = None
    output: Any = Field(default=None, description="The step's output as kept (masked, capped; docs/executor.md).")


class ExecutionDetailOut(ExecutionOut):
    output: Any = None
    input: Any = Field(
        default=None,
        description="The event's payload as received: secrets masked, large payloads "
        "cut to a preview (docs/executor.md).",
    )
    attempt_history: list[AttemptOut] = Field(default_factory=list, description="Every try, in the order they ran.")
    steps: list[StepOut] | None = _absent(
        "A multi-step workflow: each step that ran, in order, with its checkpointed outcome."
    )


class DeadLetterOut(BaseModel):
    event_id: uuid.UUID
    workflow_id: uuid.UUID
    reason: str
    attempts: int
    dead_at: datetime
    replayed_at: datetime | None = None
    payload: Any = Field(
        default=None,
        description="The event's payload, as kept with its execution: secrets masked, large payloads cut to a preview.",
    )
    last_error: str | None = Field(default=None, description="The last try's error, masked.")


REPLAY_MAX_IDS = 10_000
REPLAY_REASON_MAX = 500


REPLAY_OPTIONS = frozenset({"from_start"})
FromStart = Annotated[
    StrictBool,
    Field(
        description="A multi-step workflow restarts from its first step (by default it resumes at the step that died)."
    ),
]


def _filters_not_null(schema: dict[str, Any]) -> None:
    """The document says what the validator enforces: at least one filter, none of them null."""
    schema["minProperties"] = 1
    # ``from_start`` is an option, not a filter: one of the filters must be there.
    schema["anyOf"] = [{"required": [name]} for name in schema.get("properties", {}) if name not in REPLAY_OPTIONS]
    never_null(schema)


class DlqReplayRequest(BaseModel):
    """``POST /api/dlq/replay``: the dead letters (not replayed yet) that match every filter given.

    At least one filter; ``reason`` matches a part of the reason, case-insensitively.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_filters_not_null)
    workflow_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=REPLAY_REASON_MAX)
    since: Instant | None = Field(default=None, description="Dead from this instant on (inclusive), RFC 3339.")
    until: Instant | None = Field(default=None, description="Dead before this instant (exclusive), RFC 3339.")
    event_ids: list[uuid.UUID] | None = Field(default=None, max_length=REPLAY_MAX_IDS)
    from_start: FromStart = False

    @model_validator(mode="after")
    def _some_filter(self) -> DlqReplayRequest:
        if not self.model_fields_set - REPLAY_OPTIONS:
            raise PydanticCustomError(
                "missing_filter", "give at least one filter: workflow_id, reason, since, until or event_ids"
            )
        for name in self.model_fields_set - REPLAY_OPTIONS:
            if getattr(self, name) is None:
                raise PydanticCustomError("null_filter", "a filter is never null: leave it out instead")
        return self


class ReplayJobOut(BaseModel):
    """A bulk replay's progress: ``done`` counts the dead letters handled (``skipped`` of them had been
    replayed another way in the meantime); ``state`` is ``done`` when every one was."""

    id: uuid.UUID
    state: Literal["running", "done"]
    total: int
    done: int
    skipped: int
    percent: float = Field(ge=0, le=100)
    created_at: datetime
    finished_at: datetime | None = None


class ReplayOptions(BaseModel):
    """``POST /api/dlq/{event_id}/replay`` takes an optional body."""

    model_config = STRICT
    from_start: FromStart = False


class ReplayAccepted(BaseModel):
    event_id: uuid.UUID
    replayed_at: datetime


class PageMeta(BaseModel):
    next_cursor: Cursor | None = Field(default=None, description="The next page's cursor; null at the end.")

    @classmethod
    def after(cls, rows: list[Any], more: bool, at: str = "created_at", key: str = "id") -> dict[str, Any]:
        """``meta`` of a page of ``rows``: when ``more`` follow, the cursor after the last row's ``at`` and ``key``."""
        meta = cls()
        if more and rows:
            meta.next_cursor = encode_cursor(rows[-1][at], rows[-1][key])
        return meta.model_dump()


class VersionPageMeta(BaseModel):
    """``meta`` of a page of ``/versions`` (paged by version number)."""

    next_cursor: VersionCursor | None = Field(default=None, description="The next page's cursor; null at the end.")


class ErrorBody(BaseModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case; one per condition a client handles.")
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    success: Literal[False]
    error: ErrorBody


# --- webhook ingest headers (Standard Webhooks) ----------------------------------------------------
# Any failure of these is a 401 invalid_signature; services.gateway.hooks.signature enforces the limits.

WEBHOOK_ID_MAX = 256
WEBHOOK_SIGNATURE_MAX = 4096
WEBHOOK_TIMESTAMP_DIGITS = 12
DEDUP_KEY_MAX = 256


class WebhookHeaders(BaseModel):
    """``POST /hooks/{workflow_id}``: the signature headers, and an optional dedup key.

    These are Standard Webhooks' headers (the trigger's default ``verify``); a workflow that
    verifies another sender (``github``, ``stripe``, ``shopify``, ``slack``, ``hmac-sha256``) takes
    that sender's headers instead, and one with ``verify: none`` takes none (docs/gateway.md).
    """

    model_config = ConfigDict(populate_by_name=True)
    webhook_id: str = Field(
        alias="webhook-id",
        min_length=1,
        max_length=WEBHOOK_ID_MAX,
        description="The sender's message id; also the dedup key.",
    )
    webhook_timestamp: str = Field(
        alias="webhook-timestamp",
        pattern=rf"^[0-9]{{1,{WEBHOOK_TIMESTAMP_DIGITS}}}$",
        description="Unix time in seconds, within the tolerance (5 minutes).",
    )
    webhook_signature: str = Field(
        alias="webhook-signature",
        min_length=1,
        max_length=WEBHOOK_SIGNATURE_MAX,
        description="Space-separated v1,<base64 HMAC-SHA256> signatures.",
    )
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=DEDUP_KEY_MAX,
        description="Dedup key when webhook-id is absent (400 if longer).",
    )


class RunHeaders(BaseModel):
    """``POST /api/workflows/{id}/run``: an optional dedup key."""

    model_config = ConfigDict(populate_by_name=True)
    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        max_length=DEDUP_KEY_MAX,
        description="The same key gives the same event id (400 if longer).",
    )


# --- health ---------------------------------------------------------------------------------------


class LiveOut(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyOut(BaseModel):
    status: Literal["ready", "not_ready", "draining"]
    checks: dict[str, bool] | None = _absent("Each dependency's check; absent while draining.")
