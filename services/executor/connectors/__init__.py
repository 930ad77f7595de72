"""Connectors, one per module, looked up by the action's ``type``."""

from __future__ import annotations

from libs.common.bus import Bus
from libs.common.http.client_ip import parse_networks
from libs.common.settings import split_list
from services.executor.connectors.base import ActionCall, Connector
from services.executor.connectors.discord import DiscordConnector
from services.executor.connectors.http_request import HttpRequestConnector
from services.executor.connectors.nats_publish import NatsPublishConnector
from services.executor.connectors.openweather import OpenWeatherConnector
from services.executor.connectors.sessions import ClientSessions
from services.executor.connectors.slack import SlackConnector
from services.executor.connectors.ssrf import EgressGuard
from services.executor.settings import ExecutorSettings

# Which credential type each action needs (``http_request``'s is optional).
CREDENTIAL_TYPES = {
    "slack_message": "slack",
    "discord_message": "discord",
    "openweather": "openweather",
    "http_request": "http",
}


def build_connectors(
    settings: ExecutorSettings, sessions: ClientSessions, bus: Bus | None = None
) -> dict[str, Connector]:
    guard = EgressGuard(parse_networks(settings.egress_allow_cidrs))
    connectors: dict[str, Connector] = {
        "slack_message": SlackConnector(
            sessions,
            hosts=split_list(settings.slack_hosts),
            allow_http=settings.webhook_allow_http,
            api_url=settings.slack_api_url,
        ),
        "discord_message": DiscordConnector(
            sessions, hosts=split_list(settings.discord_hosts), allow_http=settings.webhook_allow_http
        ),
        "openweather": OpenWeatherConnector(sessions, base_url=settings.openweather_url),
        "http_request": HttpRequestConnector(sessions, guard, max_redirects=settings.http_max_redirects),
    }
    if bus is not None:
        connectors["nats_publish"] = NatsPublishConnector(bus, max_bytes=settings.max_output_bytes)
    return connectors


__all__ = ["CREDENTIAL_TYPES", "ActionCall", "ClientSessions", "Connector", "build_connectors"]
