"""Slack's Web API: ``chat.postMessage`` with a bot token (``Authorization: Bearer xoxb-...``).

Slack answers a Web API call with HTTP 200 and ``{"ok": true, ...}`` on success
and, for most failures, HTTP 200 with ``{"ok": false, "error": "<code>"}``.  The
code decides the outcome: :data:`TRANSIENT_CODES` are retried (a rate limit
honours ``Retry-After``), every other code is permanent, since Slack documents
the few that a later try can fix and the rest (``invalid_auth``,
``channel_not_found``, ``not_in_channel``, ``invalid_blocks``...) need a person.
A non-200 answer goes through :func:`raise_for_status` (429 and 5xx retried).

The token travels only in the ``Authorization`` header: no error text built
here contains it (Slack's answers never echo it, and only their ``error`` code
is quoted, and only when it looks like one).  ``Idempotency-Key: <event_id>`` goes along, as with the other
connectors.  The base URL is ``IPAAS_EXECUTOR_SLACK_API_URL`` (a fake Slack in tests).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from yarl import URL

from services.executor.connectors.base import ActionCall, raise_for_status, retry_after_seconds, with_trace
from services.executor.connectors.configs import SlackMessage
from services.executor.connectors.sessions import ClientSessions
from services.executor.errors import PermanentError, TransientError

# ``ok: false`` codes worth another try; Slack spells the rate limit both ways across methods.
RATE_LIMIT_CODES = frozenset({"ratelimited", "rate_limited"})
TRANSIENT_CODES = RATE_LIMIT_CODES | frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)
# Without a Retry-After, a rate-limited try waits at least this long (Slack's rate tiers are per minute).
RATE_LIMIT_FALLBACK_SECONDS = 1.0
SLACK_CODE = re.compile(r"[a-z0-9_.]{1,100}")


def post_message_body(config: SlackMessage) -> dict[str, Any]:
    """The ``chat.postMessage`` arguments of a rendered ``slack_message`` config."""
    channel = config.channel
    if channel is None or channel.strip() == "":
        raise PermanentError("slack_message with a bot token needs config.channel")
    body: dict[str, Any] = {"channel": channel, "text": config.text}
    if config.blocks is not None:
        body["blocks"] = config.blocks
    # A number (a typed value) arrives as its text (``coerce_numbers_to_str``): Slack wants the string it gave out.
    if config.thread_ts:
        body["thread_ts"] = config.thread_ts
        if config.reply_broadcast is not None:
            body["reply_broadcast"] = config.reply_broadcast
    return body


def _answer(body: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise TransientError("slack api answered 200 with a body that is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("ok"), bool):
        raise TransientError("slack api answered 200 without an ok field")
    return data


def shown_code(code: str) -> str:
    """The code as error text: Slack's codes are short snake_case words; anything else is not quoted."""
    return code if SLACK_CODE.fullmatch(code) else "an unreadable error code"


def raise_for_error(code: str, headers: Mapping[str, str]) -> None:
    """``ok: false`` with ``code``: transient for the codes a later try can fix, else permanent."""
    shown = shown_code(code)
    if code in RATE_LIMIT_CODES:
        wait = retry_after_seconds(headers)
        raise TransientError(f"slack api: {shown}", retry_after=RATE_LIMIT_FALLBACK_SECONDS if wait is None else wait)
    if code in TRANSIENT_CODES:
        raise TransientError(f"slack api: {shown}")
    raise PermanentError(f"slack api: {shown}")


class SlackWebApi:
    """Posts one message; the output (``channel``, ``ts``) lets a later step reply in its thread."""

    def __init__(self, sessions: ClientSessions, *, base_url: str) -> None:
        self._sessions = sessions
        self._url = URL(base_url.rstrip("/") + "/api/chat.postMessage")

    async def post(self, call: ActionCall[SlackMessage], token: str) -> dict[str, Any]:
        message = post_message_body(call.config)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": call.event_id,
        }
        status, body, resp_headers = await self._sessions.post_json(
            "slack api", self._url, message, with_trace(headers, call)
        )
        if status != 200:
            raise_for_status("slack api", status, body, resp_headers)
        data = _answer(body)
        if not data["ok"]:
            raise_for_error(str(data.get("error") or "unknown_error"), resp_headers)
        out: dict[str, Any] = {
            "delivered": True,
            "status": status,
            "channel": data.get("channel"),
            "ts": data.get("ts"),
            "chars": len(message["text"]),
        }
        if "thread_ts" in message:
            out["thread_ts"] = message["thread_ts"]
        return out
