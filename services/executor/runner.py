"""Prepare and run one action: credential, templates, connector under a timeout.

Shared by the event worker and the dry-run responder.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from typing import Any

import orjson

from libs.common.logs import mask_truncated, mask_value
from libs.common.logs.redaction import Redactor
from libs.common.models.workflows import Action, WorkflowDefinition
from libs.common.telemetry import ActiveSpan
from libs.common.templates import TemplateEngine
from services.executor.call_span import connector_span, outgoing_trace_headers, record_status
from services.executor.connectors import CREDENTIAL_TYPES, ActionCall, Connector
from services.executor.connectors.configs import RenderedConfig, validated
from services.executor.credentials import CredentialResolver
from services.executor.errors import ActionError, PermanentError, TransientError
from services.executor.templates import CONFIG_PATH, render_action_config

MAX_CACHED_CONFIGS = 4096


class ActionRunner:
    def __init__(
        self,
        connectors: dict[str, Connector],
        credentials: CredentialResolver,
        *,
        timeout_seconds: float,
        max_output_bytes: int,
        max_input_bytes: int = 16_384,
        templates: TemplateEngine | None = None,
        propagate_to: frozenset[str] = frozenset(),
    ) -> None:
        self._connectors = connectors
        # Action types whose target receives the call's ``traceparent`` (IPAAS_EXECUTOR_TRACE_PROPAGATION).
        self._propagate_to = propagate_to
        self._credentials = credentials
        self._timeout = timeout_seconds
        self._templates = templates
        self._max_output = max_output_bytes
        self._max_input = max_input_bytes
        # id(config model) -> (the model, its JSON dump); the model is kept so the id stays its own.
        self._configs: dict[int, tuple[Any, dict[str, Any]]] = {}

    async def prepare(
        self, *, tenant_id: uuid.UUID, event_id: uuid.UUID, definition: WorkflowDefinition, payload: Any, event: Any
    ) -> ActionCall[RenderedConfig]:
        """The call of a single-action workflow's action (``Idempotency-Key``: the event id)."""
        return await self.prepare_action(
            definition.first_action(), tenant_id=tenant_id, key=str(event_id), payload=payload, event=event
        )

    async def prepare_action(
        self,
        action: Action,
        *,
        tenant_id: uuid.UUID,
        key: str,
        payload: Any,
        event: Any,
        extra: dict[str, Any] | None = None,
        where: str = CONFIG_PATH,
    ) -> ActionCall[RenderedConfig]:
        """Credential and rendered config of one action; ``key`` is what the target sees as ``Idempotency-Key``
        (a step's is ``<event_id>:<step_id>``); ``extra`` adds template names (``trigger``, ``steps``).

        The rendered config is validated here, once, into the connector's model (a ``ConfigError``, permanent,
        naming the field under ``where`` when it does not fit)."""
        if action.type not in self._connectors:
            raise PermanentError(f"no connector for action type {action.type}")
        secret: dict[str, Any] = {}
        credential_id: uuid.UUID | None = getattr(action, "credential_id", None)  # nats_publish takes none
        if credential_id is not None:
            secret = await self._credentials.resolve(tenant_id, credential_id, CREDENTIAL_TYPES[action.type])
        rendered = await render_action_config(
            self._config_json(action.config), payload, event, self._templates, extra=extra, where=where
        )
        config = validated(action.type, rendered, where)
        return ActionCall(event_id=key, tenant_id=str(tenant_id), config=config, secret=secret)

    @property
    def templates(self) -> TemplateEngine | None:
        return self._templates

    def _config_json(self, config: Any) -> dict[str, Any]:
        """The action config as JSON data, dumped once per (immutable, cached) definition.

        Rendering builds a new structure and never changes this one.
        """
        entry = self._configs.get(id(config))
        if entry is not None and entry[0] is config:
            return entry[1]
        dumped: dict[str, Any] = config.model_dump(mode="json")
        if len(self._configs) >= MAX_CACHED_CONFIGS:
            self._configs.clear()
        self._configs[id(config)] = (config, dumped)
        return dumped

    async def call(
        self, action_type: str, call: ActionCall[RenderedConfig], *, timeout: float | None = None
    ) -> dict[str, Any]:
        """The connector's call under the timeout (a step's own, else the executor's), inside a CLIENT span
        (see :mod:`services.executor.call_span`)."""
        connector = self._connectors[action_type]
        span = connector_span(action_type)
        limit = timeout or self._timeout
        with ActiveSpan(span):
            if action_type in self._propagate_to:
                call = replace(call, trace_headers=outgoing_trace_headers())
            try:
                async with asyncio.timeout(limit):
                    output = await connector(call)
            except TimeoutError as exc:
                raise TransientError(f"{action_type} timed out after {limit:g}s") from exc
            except ActionError as exc:
                record_status(span, exc.http_status)
                raise
            record_status(span, output.get("status") if isinstance(output, dict) else None)
            return output

    def safe_input(self, payload: Any) -> Any:
        """The event's payload as kept with its execution: masked, and cut to a preview past ``max_input_bytes``.

        A large payload is cut first and its preview masked, so keeping it costs little whatever its size.
        """
        try:
            raw = orjson.dumps(payload)
        except (TypeError, orjson.JSONEncodeError):
            raw = json.dumps(payload, default=str).encode()
        if len(raw) <= self._max_input:
            return mask_value(payload)
        return {
            "truncated": True,
            "size": len(raw),
            "preview": mask_truncated(raw[: self._max_input].decode("utf-8", "replace"), self._max_input),
        }

    def safe_output(self, output: Any, redactor: Redactor | None = None, *, limit: int | None = None) -> Any:
        """Redacted (the values ``redactor`` holds), masked, and cut down when larger than ``max_output_bytes``
        (or ``limit``: a step's kept output has its own cap).

        A string is cut to the limit in characters before it is masked:
        one that long makes the whole output a preview anyway.
        """
        cap = limit or self._max_output
        if redactor:
            output = redactor.value(output)
        masked = mask_value(output, cap)
        if redactor:
            masked = redactor.value(masked)  # a cut may have left the start of a value at a string's end
        raw = orjson.dumps(masked, default=str)
        if len(raw) <= cap:
            return masked
        preview = raw[:cap].decode("utf-8", "replace")
        return {"truncated": True, "preview": redactor.text(preview) if redactor else preview}


def safe_error(message: str, limit: int = 2000, redactor: Redactor | None = None) -> str:
    """The error text to store: redacted, masked, at most ``limit`` characters (cut first, so a long one
    costs little)."""
    if not redactor:
        return mask_truncated(message, limit)
    return redactor.text(mask_truncated(redactor.text(message), limit))
