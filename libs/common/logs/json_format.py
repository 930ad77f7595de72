"""One JSON object per log line: ``ts``, ``level``, ``service``, ``msg``, fields,
and ``trace_id``/``span_id`` when the record is emitted inside a span (plus ``trace_url`` on
warnings and errors, when ``IPAAS_TRACE_URL_TEMPLATE`` is set).

Masking happens here, where a line is written: the message, every extra field
and the exception text are masked (and, inside ``redaction.redacting``, the
secret values of the work at hand are replaced), and cut first (``mask_truncated``) so a huge
value costs no more than its cap. A message longer than
``MAX_MESSAGE_CHARS`` or a traceback longer than ``MAX_EXCEPTION_CHARS`` ends in
``TRUNCATED``; a string field (at any depth) is cut at ``MAX_FIELD_CHARS``.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson
from opentelemetry import trace

from libs.common.logs.masking import mask_text, mask_truncated, mask_value
from libs.common.logs.redaction import current_redactor
from libs.common.logs.trace_links import trace_url

MAX_MESSAGE_CHARS = 8192
MAX_FIELD_CHARS = 8192
MAX_EXCEPTION_CHARS = 16384
TRUNCATED = " [truncated]"

# Attributes every LogRecord has; anything else came from ``extra=`` and is a field.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime", "taskName"})


def mask_capped(text: str, limit: int) -> str:
    """``text`` redacted and masked; when longer than ``limit``, cut to ``limit`` first and marked ``TRUNCATED``."""
    redactor = current_redactor()
    if redactor:
        text = redactor.text(text)
    if len(text) <= limit:
        return mask_text(text)
    cut = mask_truncated(text, limit)
    return (redactor.text(cut) if redactor else cut) + TRUNCATED


class MaskingFilter(logging.Filter):
    """Redacts secrets from the message, its arguments and its extra fields, and caps their size."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = mask_capped(message, MAX_MESSAGE_CHARS)
        record.args = None
        redactor = current_redactor()
        for key, value in list(vars(record).items()):
            if key not in _RESERVED:
                if redactor:
                    value = redactor.value(value)
                masked = mask_value({key: value}, MAX_FIELD_CHARS)[key]
                setattr(record, key, redactor.value(masked) if redactor else masked)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, trace_url_template: str = "") -> None:
        super().__init__()
        self.service = service
        self.trace_url_template = trace_url_template

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
            if self.trace_url_template and record.levelno >= logging.WARNING:
                entry["trace_url"] = trace_url(self.trace_url_template, entry["trace_id"])
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = mask_capped(self.formatException(record.exc_info), MAX_EXCEPTION_CHARS)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(service: str, level: str = "INFO", trace_url_template: str = "") -> None:
    """Send JSON lines to stderr, masked, at ``level``. Replaces existing handlers.

    With ``trace_url_template`` (``IPAAS_TRACE_URL_TEMPLATE``), a warning or an error written
    inside a span also carries ``trace_url``: the trace in the trace UI, one click away.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service, trace_url_template))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
