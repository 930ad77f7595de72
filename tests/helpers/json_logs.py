"""A logger that writes as the services do (masked JSON lines) into a buffer the test reads."""

from __future__ import annotations

import io
import logging

from libs.common.logs import JsonFormatter, MaskingFilter


def json_logger(name: str) -> tuple[logging.Logger, io.StringIO]:
    """A logger ``name`` writing through the masking filter and the JSON formatter, and what it wrote."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.propagate = False
    return logger, stream
