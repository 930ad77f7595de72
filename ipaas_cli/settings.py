"""The environment variables the CLI reads (all optional), in one place.

- ``IPAAS_SERVER``: the gateway URL, instead of the context's;
- ``IPAAS_TOKEN``: a login token or an ``ipk_`` API key, instead of the context's;
- ``IPAAS_CONTEXT``: the context to use, instead of the current one;
- ``IPAAS_WEBHOOK_SECRET``: the ``whsec_`` secret ``webhook send`` signs with;
- ``IPAAS_TRACE_URL_TEMPLATE``: a trace viewer's URL with ``{trace_id}``, for the links
  ``trace`` and ``executions get`` print.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IPAAS_", extra="ignore")

    server: str | None = None
    token: str | None = None
    context: str | None = None
    webhook_secret: str | None = None
    trace_url_template: str | None = None
