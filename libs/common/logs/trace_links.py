"""A trace id as a link to a trace UI, from ``IPAAS_TRACE_URL_TEMPLATE``.

The template holds ``{trace_id}`` where the 32-hex-digit id goes, e.g. Jaeger's
``http://jaeger:16686/trace/{trace_id}`` or Grafana Tempo's Explore URL.  Empty: no links.
"""

from __future__ import annotations

PLACEHOLDER = "{trace_id}"


def check_template(template: str) -> str:
    """``template`` when empty, or an http(s) URL holding ``{trace_id}``; raises ``ValueError`` otherwise."""
    if template and (PLACEHOLDER not in template or not template.startswith(("https://", "http://"))):
        raise ValueError(f"IPAAS_TRACE_URL_TEMPLATE must be an http(s) URL containing {PLACEHOLDER}")
    return template


def trace_url(template: str, trace_id: str | None) -> str | None:
    if not template or not trace_id:
        return None
    return template.replace(PLACEHOLDER, trace_id)
