"""The executor's side of templates: render an action config with the shared bounded engine.

Strings anywhere in the config are templates (``{{ payload.order_id }}``),
rendered by ``libs.common.templates`` within the limits of
``TemplateSettings`` (``IPAAS_EXECUTOR_TEMPLATE_*``). Every template problem
(does not compile, over a limit, undefined variable, sandbox violation) is a
``TemplateError``, a ``PermanentError``: retrying the same event cannot fix it.

Templates not compiled yet are compiled in a worker thread, so a large one
never holds the event loop; rendering itself runs on the loop under the time
limit. The engine (and its compile cache) is one per process, built from the
environment on first use.
"""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from libs.common.models.events import EventEnvelope
from libs.common.templates import NeedsCompile, TemplateEngine, TemplateLimits, TemplateProblem
from services.executor.errors import PermanentError
from services.executor.settings import TemplateSettings

CONFIG_PATH = "action.config"
# Config keys holding JSON sent as is (http_request's body, nats_publish's payload, Slack's blocks,
# Discord's embeds): there, a string that is exactly one ``{{ expr }}`` gives the expression's typed
# value (42, true, a list), not its text.
TYPED_KEYS = frozenset({"body", "payload", "blocks", "embeds"})
# A filter step's condition renders typed: ``{{ payload.amount > 100 }}`` gives ``True``, not ``"True"``.
CONDITION_KEYS = frozenset({"condition"})


class TemplateError(PermanentError):
    """A template of the action config failed; ``code`` and ``field`` say how and where."""

    def __init__(self, problem: TemplateProblem, where: str = CONFIG_PATH) -> None:
        self.code = problem.code
        self.field = problem.where(where)
        super().__init__(f"template error in {self.field}: {problem.message}")


def engine_for(settings: TemplateSettings) -> TemplateEngine:
    limits = TemplateLimits(
        time_limit_ms=settings.time_limit_ms,
        max_output_chars=settings.max_output_chars,
        max_iterations=settings.max_iterations,
    )
    return TemplateEngine(limits, cache_bytes=settings.cache_bytes)


@cache
def default_engine() -> TemplateEngine:
    return engine_for(TemplateSettings())


def render_config(
    config: dict[str, Any], payload: Any, event: Any, engine: TemplateEngine | None = None
) -> dict[str, Any]:
    """Render on the calling thread, compiling inline."""
    try:
        return (engine or default_engine()).render_config(
            config, {"payload": payload, "event": event}, typed_keys=TYPED_KEYS
        )
    except TemplateProblem as exc:
        raise TemplateError(exc) from exc


async def render_action_config(
    config: dict[str, Any],
    payload: Any,
    event: Any,
    engine: TemplateEngine | None = None,
    *,
    extra: dict[str, Any] | None = None,
    typed_keys: frozenset[str] = TYPED_KEYS,
    where: str = CONFIG_PATH,
) -> dict[str, Any]:
    """Render on the event loop; templates met for the first time are compiled in a thread first.

    ``extra``: more names for templates (a step's ``trigger`` and ``steps``); ``where``: the field
    path a ``TemplateError`` names (``steps.1.action.config``).
    """
    engine = engine or default_engine()
    context = {"payload": payload, "event": event, **(extra or {})}
    try:
        try:
            return engine.render_config(config, context, compile_inline=False, typed_keys=typed_keys)
        except NeedsCompile:
            compiled = await asyncio.to_thread(engine.compile_sources, engine.pending(config, context, typed_keys))
            return engine.render_config(config, context, compiled=engine.remember(compiled), typed_keys=typed_keys)
    except TemplateProblem as exc:
        raise TemplateError(exc, where) from exc


async def filter_passes(
    condition: str, payload: Any, event: Any, engine: TemplateEngine | None = None, *, extra: dict[str, Any], where: str
) -> bool:
    """A filter step's condition (a template, see ``condition_template``), evaluated typed: is it truthy?"""
    rendered = await render_action_config(
        {"condition": condition}, payload, event, engine, extra=extra, typed_keys=CONDITION_KEYS, where=where
    )
    return bool(rendered["condition"])


class _EventView:
    """An envelope's fields as templates read them, each computed only when a template reads it."""

    __slots__ = ("_event",)

    def __init__(self, event: EventEnvelope) -> None:
        self._event = event

    @property
    def workflow_id(self) -> str:
        return str(self._event.workflow_id)

    @property
    def received_at(self) -> str:
        return self._event.received_at.isoformat()

    @property
    def scheduled_for(self) -> str | None:
        return self._event.scheduled_for.isoformat() if self._event.scheduled_for else None


class EventContext(_EventView):
    """``event`` in templates."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return str(self._event.event_id)

    @property
    def trigger(self) -> str:
        return self._event.trigger.value


class TriggerContext(_EventView):
    """``trigger`` in a step's templates: how the event came in (its ids and when it was received)."""

    __slots__ = ()

    @property
    def type(self) -> str:
        return self._event.trigger.value

    @property
    def event_id(self) -> str:
        return str(self._event.event_id)

    @property
    def workflow_version(self) -> int:
        return self._event.workflow_version

    @property
    def dedup_key(self) -> str:
        return self._event.dedup_key
