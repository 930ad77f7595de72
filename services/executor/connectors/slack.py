"""``slack_message``: the credential decides the way in.

- ``{"webhook_url"}``: an incoming webhook, POST ``{"text"}`` (and ``blocks``); a 200 ``ok``
  means delivered.  The URL must be on the configured Slack hosts.  A webhook posts to its
  own channel only, so ``channel`` and ``thread_ts`` are refused (permanent) rather than ignored.
- ``{"bot_token"}``: the Web API's ``chat.postMessage`` (:mod:`.slack_api`), to ``channel``,
  optionally in a thread.
"""

from __future__ import annotations

from typing import Any

from services.executor.connectors.base import ActionCall, raise_for_status, with_trace
from services.executor.connectors.configs import SlackMessage
from services.executor.connectors.sessions import JSON_HEADERS, ClientSessions
from services.executor.connectors.slack_api import SlackWebApi
from services.executor.connectors.webhook_url import checked_webhook_url
from services.executor.errors import PermanentError, TransientError


def web_api_only(config: SlackMessage) -> list[str]:
    """The fields given that only the Web API can carry out."""
    fields = (("channel", config.channel), ("thread_ts", config.thread_ts), ("reply_broadcast", config.reply_broadcast))
    return [name for name, value in fields if value is not None]


class SlackConnector:
    name = "slack_message"

    def __init__(
        self, sessions: ClientSessions, *, hosts: list[str], allow_http: bool, api_url: str = "https://slack.com"
    ) -> None:
        self._sessions = sessions
        self._hosts = [h.lower() for h in hosts]
        self._allow_http = allow_http
        self._api = SlackWebApi(sessions, base_url=api_url)

    async def __call__(self, call: ActionCall[SlackMessage]) -> dict[str, Any]:
        token = call.secret.get("bot_token")
        if token is not None:
            if not isinstance(token, str) or not token:
                raise PermanentError("slack credential has an empty bot_token")
            return await self._api.post(call, token)
        given = web_api_only(call.config)
        if given:
            raise PermanentError(f"slack_message: {', '.join(given)} needs a bot_token credential, not a webhook")
        url = checked_webhook_url(call.secret, service="slack", hosts=self._hosts, allow_http=self._allow_http)
        text = call.config.text
        message: dict[str, Any] = {"text": text}
        if call.config.blocks is not None:
            message["blocks"] = call.config.blocks
        status, body, headers = await self._sessions.post_json("slack", url, message, with_trace(JSON_HEADERS, call))
        if status == 200 and body.strip() == "ok":
            return {"delivered": True, "status": status, "chars": len(text)}
        if status == 200:
            # Slack signals some failures with 200 and an error word instead of "ok".
            raise TransientError(f"slack answered 200 without ok: {body[:200]}")
        raise_for_status("slack", status, body, headers)
