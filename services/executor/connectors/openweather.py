"""OpenWeather current weather (``/data/2.5/weather?q=&appid=&units=``), summarised compactly."""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from services.executor.connectors.base import ActionCall, raise_for_status
from services.executor.connectors.configs import OpenWeatherQuery
from services.executor.connectors.sessions import ClientSessions, network_error
from services.executor.errors import PermanentError, TransientError


def summarise(data: dict[str, Any], units: str) -> dict[str, Any]:
    main = data.get("main") or {}
    weather = (data.get("weather") or [{}])[0] or {}
    wind = data.get("wind") or {}
    return {
        "city": data.get("name"),
        "country": (data.get("sys") or {}).get("country"),
        "description": weather.get("description"),
        "temp": main.get("temp"),
        "feels_like": main.get("feels_like"),
        "humidity": main.get("humidity"),
        "wind_speed": wind.get("speed"),
        "units": units,
    }


class OpenWeatherConnector:
    name = "openweather"

    def __init__(self, sessions: ClientSessions, *, base_url: str) -> None:
        self._sessions = sessions
        self._url = URL(base_url.rstrip("/") + "/data/2.5/weather")

    async def __call__(self, call: ActionCall[OpenWeatherQuery]) -> dict[str, Any]:
        api_key = call.secret.get("api_key")
        if not isinstance(api_key, str) or not api_key:
            raise PermanentError("openweather credential has no api_key")
        units = call.config.units
        params = {"q": call.config.city, "appid": api_key, "units": units}
        try:
            async with self._sessions.for_url(self._url).get(
                self._url, params=params, headers=call.trace_headers or None
            ) as resp:
                status, headers = resp.status, resp.headers
                if status == 200:
                    data = await resp.json(content_type=None)
                else:
                    body = await resp.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise network_error("openweather", exc) from exc
        except ValueError as exc:
            raise TransientError("openweather answered malformed JSON") from exc
        if status == 200:
            if not isinstance(data, dict):
                raise TransientError("openweather answered an unexpected body")
            return summarise(data, units)
        raise_for_status("openweather", status, body, headers)
