"""Discord webhook: POST ``{"content", "embeds"}``; 204 (or 200) means delivered; 429 carries ``retry_after``."""

from __future__ import annotations

import json
from typing import Any

from services.executor.connectors.base import ActionCall, raise_for_status, with_trace
from services.executor.connectors.configs import DiscordMessage
from services.executor.connectors.sessions import JSON_HEADERS, ClientSessions
from services.executor.connectors.webhook_url import checked_webhook_url


def _retry_after_from_body(body: str) -> float | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("retry_after") if isinstance(data, dict) else None
    if isinstance(value, int | float) and value >= 0:
        # Discord's v10 API gives seconds (float); very old versions gave milliseconds.
        return float(value) / 1000.0 if isinstance(value, int) and value > 1000 else float(value)
    return None


class DiscordConnector:
    name = "discord_message"

    def __init__(self, sessions: ClientSessions, *, hosts: list[str], allow_http: bool) -> None:
        self._sessions = sessions
        self._hosts = [h.lower() for h in hosts]
        self._allow_http = allow_http

    async def __call__(self, call: ActionCall[DiscordMessage]) -> dict[str, Any]:
        url = checked_webhook_url(call.secret, service="discord", hosts=self._hosts, allow_http=self._allow_http)
        cfg = call.config
        message = {key: value for key, value in (("content", cfg.content), ("embeds", cfg.embeds)) if value is not None}
        status, body, headers = await self._sessions.post_json("discord", url, message, with_trace(JSON_HEADERS, call))
        if status in (200, 204):
            return {"delivered": True, "status": status, "chars": len(cfg.content or "")}
        retry_after = _retry_after_from_body(body) if status == 429 else None
        raise_for_status("discord", status, body, headers, retry_after=retry_after)
