"""Slack incoming webhook: POST ``{"text"}`` (and ``blocks`` when given); a 200 ``ok`` means delivered."""

from __future__ import annotations

from typing import Any

import aiohttp

from services.executor.connectors.base import ActionCall, raise_for_status, with_trace
from services.executor.connectors.sessions import JSON_HEADERS, ClientSessions, json_body, network_error
from services.executor.connectors.webhook_url import checked_webhook_url
from services.executor.errors import TransientError


class SlackConnector:
    name = "slack_message"

    def __init__(self, sessions: ClientSessions, *, hosts: list[str], allow_http: bool) -> None:
        self._sessions = sessions
        self._hosts = [h.lower() for h in hosts]
        self._allow_http = allow_http

    async def __call__(self, call: ActionCall) -> dict[str, Any]:
        url = checked_webhook_url(call.secret, service="slack", hosts=self._hosts, allow_http=self._allow_http)
        text = str(call.config.get("text", ""))
        message: dict[str, Any] = {"text": text}
        if call.config.get("blocks") is not None:
            message["blocks"] = call.config["blocks"]
        try:
            async with self._sessions.for_url(url).post(
                url, data=json_body(message), headers=with_trace(JSON_HEADERS, call), allow_redirects=False
            ) as resp:
                body = await resp.text(errors="replace")
                status, headers = resp.status, resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise network_error("slack", exc) from exc
        if status == 200 and body.strip() == "ok":
            return {"delivered": True, "status": status, "chars": len(text)}
        if status == 200:
            # Slack signals some failures with 200 and an error word instead of "ok".
            raise TransientError(f"slack answered 200 without ok: {body[:200]}")
        raise_for_status("slack", status, body, headers)
        raise AssertionError("unreachable")  # pragma: no cover
