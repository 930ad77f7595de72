"""Workflow definitions: the trigger and the action, validated at the edge.

The gateway validates request bodies with these models, and the scheduler and
the executor read stored definitions back through them.  Unknown fields are
rejected everywhere, which blocks mass assignment.  Booleans and integers are
strict (``"true"`` or ``"1"`` is not taken for ``true`` or ``1``): what the
OpenAPI document, generated from these models, says is what is accepted.

The shortest schedule interval is a deployment setting, not part of the model:
:func:`too_frequent` measures a trigger against it, and the gateway (at save)
and the scheduler (before it loads a stored version) both ask it, so the two
cannot disagree on what counts as too frequent.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from libs.common.templates import template_problems as check_templates
from libs.common.templates.references import step_references
from libs.common.templates.typed import typed_expression

STRICT = ConfigDict(extra="forbid")


def _empty(value: Any) -> bool:
    """Optional config fields left out are left out of what is stored and shown (as they were sent)."""
    return value is None or value == {}


# Validation context of data read back from storage: its shape is checked, but not what a later rule,
# a newer zone database or a hand edit may have made invalid (the API shows such a workflow with its
# schedule_error instead of failing to answer).
STORED: dict[str, bool] = {"stored": True}


def is_stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _json_integer(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# A JSON Schema integer: a number with no fraction (``60`` or ``60.0``), never ``"60"`` or ``true``.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]
# What the document says of a cron expression: 5 or 6 fields (whether croniter takes them is the validator's).
CRON_SHAPE = r"^\s*\S+(\s+\S+){4,5}\s*$"


WebhookVerify = Literal["standard-webhooks", "github", "stripe", "shopify", "slack", "hmac-sha256", "none"]
STANDARD_WEBHOOKS: Final = "standard-webhooks"


class HmacSignature(BaseModel):
    """``verify: hmac-sha256``: where the signature is and how it is written."""

    model_config = STRICT
    header: str = Field(default="X-Signature", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9-]+$")
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = Field(default="", max_length=20, pattern=r"^[ -~]*$")


class WebhookTrigger(BaseModel):
    model_config = STRICT
    type: Literal["webhook"]
    # How requests are authenticated: the Standard Webhooks spec (default), a sender's own scheme with
    # the secret it gave the user (POST /api/workflows/{id}/webhook-secret {"secret"}), or none at all.
    verify: WebhookVerify = Field(default=STANDARD_WEBHOOKS, exclude_if=lambda v: v == STANDARD_WEBHOOKS)
    hmac: HmacSignature | None = Field(default=None, exclude_if=_empty)

    @model_validator(mode="after")
    def _hmac_only_for_hmac(self) -> WebhookTrigger:
        if self.hmac is not None and self.verify != "hmac-sha256":
            raise ValueError("hmac settings go with verify: hmac-sha256")
        return self


class ScheduleTrigger(BaseModel):
    """``cron`` (5 fields, or 6 with seconds first) with a ``timezone``, or ``interval_seconds``."""

    # The document states :meth:`_one_schedule`: exactly one of the two is given.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["cron"], "properties": {"cron": {"type": "string"}}},
                {"required": ["interval_seconds"], "properties": {"interval_seconds": {"type": "integer"}}},
            ]
        },
    )
    type: Literal["schedule"]
    cron: str | None = Field(
        default=None,
        max_length=200,
        json_schema_extra={
            "pattern": CRON_SHAPE,
            "description": "5 fields, or 6 with seconds first (croniter syntax).",
        },
    )
    timezone: str = Field(default="UTC", max_length=64, description="An IANA time zone name, e.g. Europe/Paris.")
    interval_seconds: Annotated[int, Field(ge=1, le=366 * 24 * 3600), BeforeValidator(_json_integer)] | None = None
    catchup: Literal["skip", "all"] = "skip"
    overlap: Literal["allow", "skip"] = "allow"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str, info: ValidationInfo) -> str:
        if is_stored(info):
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone: {value!r}") from exc
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or is_stored(info):
            return value
        fields = value.split()
        if len(fields) not in (5, 6):
            raise ValueError("cron needs 5 fields, or 6 with seconds first")
        if not croniter.is_valid(to_croniter_expression(value)):
            raise ValueError(f"invalid cron expression: {value!r}")
        return " ".join(fields)

    @model_validator(mode="after")
    def _one_schedule(self) -> ScheduleTrigger:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("a schedule needs exactly one of 'cron' or 'interval_seconds'")
        return self


def to_croniter_expression(cron: str) -> str:
    """Our 6-field form puts seconds first; croniter wants them last."""
    fields = cron.split()
    return " ".join(fields[1:] + fields[:1] if len(fields) == 6 else fields)


DAY_SECONDS = 24 * 3600


def shortest_gap_seconds(trigger: ScheduleTrigger) -> int:
    """The shortest time between two fire times of ``trigger``, in seconds, at most a day.

    An interval schedule: its interval.  A cron schedule: the shortest step of its time of day,
    read from the second (6 fields), minute and hour fields on its zone's wall clock; the step
    across midnight counts as if the next day fired too, so ``55 59 23 * * *`` with
    ``0 0 0 * * *`` is 5 s.  Day fields can only make the real gaps longer.  A daylight-saving
    jump is not counted: fire times inside a skipped hour collapse into its end (see
    ``services/scheduler/slots.py``), once a year.
    """
    if trigger.interval_seconds is not None:
        return min(trigger.interval_seconds, DAY_SECONDS)
    if trigger.cron is None:
        return DAY_SECONDS
    fields, _ = croniter.expand(to_croniter_expression(trigger.cron))
    minutes, hours = _values(fields[0], 59), _values(fields[1], 23)
    seconds = _values(fields[5], 59) if len(fields) > 5 else [0]
    first = hours[0] * 3600 + minutes[0] * 60 + seconds[0]
    last = hours[-1] * 3600 + minutes[-1] * 60 + seconds[-1]
    gaps = [DAY_SECONDS - last + first]
    gaps += [b - a for a, b in itertools.pairwise(seconds)]
    gaps += [(b - a) * 60 + seconds[0] - seconds[-1] for a, b in itertools.pairwise(minutes)]
    gaps += [
        (b - a) * 3600 + minutes[0] * 60 + seconds[0] - minutes[-1] * 60 - seconds[-1]
        for a, b in itertools.pairwise(hours)
    ]
    return min(gaps)


def _values(field: list[Any], highest: int) -> list[int]:
    """A croniter-expanded time field as sorted numbers (``['*']`` is every value)."""
    if "*" in field:
        return list(range(highest + 1))
    return sorted({int(v) for v in field})


def too_frequent(trigger: ScheduleTrigger, min_interval_seconds: int) -> str | None:
    """Why ``trigger`` may not run (it fires more often than the minimum), or ``None``."""
    gap = shortest_gap_seconds(trigger)
    if gap >= min_interval_seconds:
        return None
    return f"the schedule fires {gap} s apart at its fastest; the shortest interval allowed is {min_interval_seconds} s"


Trigger = Annotated[WebhookTrigger | ScheduleTrigger, Field(discriminator="type")]


class SlackConfig(BaseModel):
    """``slack_message``: through the credential's incoming webhook, or its bot token (the Web API).

    ``channel`` and ``thread_ts`` are for a bot token: a webhook posts only to its own channel,
    so the connector refuses them there rather than post somewhere unexpected.  Both are
    templates (``thread_ts`` may be an earlier step's ``ts``).
    """

    model_config = STRICT
    text: str = Field(min_length=1, max_length=40_000)
    # Block Kit blocks (https://api.slack.com/block-kit); ``text`` stays the notification's fallback.
    blocks: list[dict[str, Any]] | None = Field(default=None, max_length=50, exclude_if=_empty)
    # A channel id (``C0123...``) or name (``#general``) the bot is in; required with a bot token.
    channel: str | None = Field(default=None, min_length=1, max_length=200, exclude_if=_empty)
    # Reply in the thread of this message (its ``ts``, e.g. ``1503435956.000247``).
    thread_ts: str | None = Field(default=None, min_length=1, max_length=200, exclude_if=_empty)
    # With ``thread_ts``: also show the reply in the channel.
    reply_broadcast: StrictBool | None = Field(default=None, exclude_if=_empty)


class DiscordConfig(BaseModel):
    model_config = STRICT
    content: str | None = Field(default=None, min_length=1, max_length=2_000, exclude_if=_empty)
    # Rich embeds (https://discord.com/developers/docs/resources/message#embed-object).
    embeds: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=10, exclude_if=_empty)

    @model_validator(mode="after")
    def _something_to_send(self) -> DiscordConfig:
        if self.content is None and self.embeds is None:
            raise ValueError("discord_message needs content, embeds, or both")
        return self


class OpenWeatherConfig(BaseModel):
    model_config = STRICT
    city: str = Field(min_length=1, max_length=200)
    units: Literal["standard", "metric", "imperial"] = "metric"


# A path into a JSON response: keys and list indexes joined by dots (``data.items.0.id``).
RESPONSE_PATH = r"^[A-Za-z0-9_-]{1,100}(\.[A-Za-z0-9_-]{1,100}){0,31}$"
# A subject under the tenant's own prefix: one to eight tokens of letters, digits, ``_`` and ``-``.
NATS_SUBJECT_SUFFIX = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}$"


class HttpRequestConfig(BaseModel):
    model_config = STRICT
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    url: str = Field(min_length=1, max_length=2_048)
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    # Query parameters added to the URL (values are templates).
    query: dict[str, str] = Field(default_factory=dict, max_length=100, exclude_if=_empty)
    # An application/x-www-form-urlencoded body (values are templates), instead of ``body``.
    form: dict[str, str] | None = Field(default=None, max_length=100, exclude_if=_empty)
    # Names for parts of a JSON response: ``{"customer_id": "data.id"}`` puts the response's
    # ``data.id`` in the output's ``data.customer_id``.
    response: dict[str, Annotated[str, Field(pattern=RESPONSE_PATH)]] = Field(
        default_factory=dict, max_length=50, exclude_if=_empty
    )

    @model_validator(mode="after")
    def _one_body(self) -> HttpRequestConfig:
        if self.form is not None and self.body is not None:
            raise ValueError("give body or form, not both")
        return self


class NatsPublishConfig(BaseModel):
    model_config = STRICT
    # Published on ``tenant.<tenant_id>.<subject>``: a tenant can only reach its own subjects.
    subject: str = Field(pattern=NATS_SUBJECT_SUFFIX, max_length=400)
    payload: Any = None


class SlackAction(BaseModel):
    model_config = STRICT
    type: Literal["slack_message"]
    credential_id: uuid.UUID
    config: SlackConfig


class DiscordAction(BaseModel):
    model_config = STRICT
    type: Literal["discord_message"]
    credential_id: uuid.UUID
    config: DiscordConfig


class OpenWeatherAction(BaseModel):
    model_config = STRICT
    type: Literal["openweather"]
    credential_id: uuid.UUID
    config: OpenWeatherConfig


class HttpRequestAction(BaseModel):
    model_config = STRICT
    type: Literal["http_request"]
    credential_id: uuid.UUID | None = None
    config: HttpRequestConfig


class NatsPublishAction(BaseModel):
    model_config = STRICT
    type: Literal["nats_publish"]
    config: NatsPublishConfig


AnyAction = SlackAction | DiscordAction | OpenWeatherAction | HttpRequestAction | NatsPublishAction
Action = Annotated[AnyAction, Field(discriminator="type")]


# At most this many steps in one workflow.
MAX_STEPS: Final = 20
# The id of the one step of a single-action workflow (``action`` instead of ``steps``).
SINGLE_STEP_ID: Final = "action"
# A step id is a name templates can read as ``steps.<id>.output``.
STEP_ID = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class StepRetry(BaseModel):
    """A step's own retry policy (instead of the executor's ``IPAAS_EXECUTOR_MAX_ATTEMPTS``)."""

    model_config = STRICT
    max_attempts: Annotated[int, Field(ge=1, le=20), BeforeValidator(_json_integer)]
    backoff_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        exclude_if=_empty,
        description="First retry delay (doubling); default the executor's.",
    )


class FilterCondition(BaseModel):
    """A filter step: a sandboxed Jinja expression (``payload.amount > 100``); false ends the execution ``filtered``."""

    model_config = STRICT
    condition: str = Field(min_length=1, max_length=4_000)


class WorkflowStep(BaseModel):
    """One step: an ``action`` or a ``filter``, with its own timeout and retry policy."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["action"]}, {"required": ["filter"]}]}
    )
    id: str = Field(pattern=STEP_ID, max_length=64)
    action: Action | None = Field(default=None, exclude_if=_empty)
    filter: FilterCondition | None = Field(default=None, exclude_if=_empty)
    timeout_seconds: float | None = Field(default=None, gt=0, le=300, exclude_if=_empty)
    retry: StepRetry | None = Field(default=None, exclude_if=_empty)
    continue_on_error: StrictBool = Field(default=False, exclude_if=lambda v: v is False)

    @model_validator(mode="after")
    def _action_or_filter(self) -> WorkflowStep:
        if (self.action is None) == (self.filter is None):
            raise ValueError("a step holds exactly one of 'action' or 'filter'")
        return self


class WorkflowDefinition(BaseModel):
    """What one immutable workflow version holds: one ``action`` (a single step) or ``steps``."""

    # The document states :meth:`_one_form`: ``action`` or ``steps``, not both.
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"oneOf": [{"required": ["action"]}, {"required": ["steps"]}]}
    )
    name: str = Field(min_length=1, max_length=200)
    trigger: Trigger
    action: Action | None = Field(default=None, exclude_if=_empty)
    steps: list[WorkflowStep] | None = Field(default=None, min_length=1, max_length=MAX_STEPS, exclude_if=_empty)

    @model_validator(mode="after")
    def _one_form(self) -> WorkflowDefinition:
        if (self.action is None) == (self.steps is None):
            raise ValueError("a workflow holds exactly one of 'action' or 'steps'")
        return self

    def step_list(self) -> list[WorkflowStep]:
        """The steps to run; a single-action workflow is one step named ``action``."""
        if self.steps is not None:
            return self.steps
        return [WorkflowStep(id=SINGLE_STEP_ID, action=self.action)]

    def first_action(self) -> AnyAction:
        """The single action, or the first action step's; a workflow of filters only has none (``ValueError``)."""
        if self.action is not None:
            return self.action
        for step in self.step_list():
            if step.action is not None:
                return step.action
        raise ValueError("the workflow has no action step")


class WorkflowCreate(WorkflowDefinition):
    """``POST /api/workflows`` and ``PUT /api/workflows/{id}``: templates must compile to be saved."""

    is_active: StrictBool = True

    @model_validator(mode="after")
    def _templates_compile(self) -> WorkflowCreate:
        problems = definition_problems(self)
        if problems:
            raise ValidationError.from_exception_data(
                type(self).__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError(kind, "{reason}", {"reason": reason}),
                        loc=loc,
                        input=None,
                    )
                    for loc, reason, kind in problems
                ],
            )
        return self


Problem = tuple[tuple[str | int, ...], str, str]  # (field path, reason, error type)
TEMPLATE, STEP = "invalid_template", "invalid_step"


def template_problems(definition: WorkflowDefinition) -> list[tuple[tuple[str | int, ...], str]]:
    """``(field path, reason)`` for each problem :func:`definition_problems` finds."""
    return [(loc, reason) for loc, reason, _ in definition_problems(definition)]


def definition_problems(definition: WorkflowDefinition) -> list[Problem]:
    """``(field path, reason, type)`` for each template that does not compile, and each bad step graph.

    The path starts at the definition (``("action", "config", "body", "items", 0)`` or
    ``("steps", 1, "action", "config", "text")``), without the action type that pydantic puts in
    locations of the discriminated union. The check is the executor's own compile
    (``libs.common.templates``), so the two cannot disagree. Steps (type ``invalid_step``): ids are
    unique, and a template reads ``steps.<id>`` only of an earlier step. Stored versions are not
    re-checked when read back.
    """
    if definition.steps is None:
        assert definition.action is not None
        dumped = definition.action.config.model_dump(mode="json")
        return [(("action", "config", *path), reason, TEMPLATE) for path, reason in check_templates(dumped)]
    steps = definition.steps
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step.id in seen:
            problems.append((("steps", index, "id"), f"duplicate step id {step.id!r}", STEP))
        where: tuple[str | int, ...]
        if step.action is not None:
            config: Any = step.action.config.model_dump(mode="json")
            where = ("steps", index, "action", "config")
        else:
            assert step.filter is not None
            config = {"condition": condition_template(step.filter.condition)}
            where = ("steps", index, "filter")
        problems += [((*where, *path), reason, TEMPLATE) for path, reason in check_templates(config)]
        for path, name in step_references(config):
            if name not in seen:
                later = any(s.id == name for s in steps[index:])
                why = "a later step (or this one)" if later else "no step"
                problems.append(((*where, *path), f"steps.{name} names {why}: a step reads only earlier ones", STEP))
        seen.add(step.id)
    return problems


def condition_template(condition: str) -> str:
    """A filter's condition as a template: ``payload.x > 1`` becomes ``{{ payload.x > 1 }}``.

    A condition that is already exactly one ``{{ expr }}`` is kept; anything else is wrapped, so
    ``{{ a }} and {{ b }}`` does not compile (it would otherwise be text, and any text is true).
    """
    stripped = condition.strip()
    if typed_expression(stripped) is not None:
        return stripped
    return "{{ " + stripped + " }}"
