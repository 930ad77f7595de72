"""JSON-lines logging with trace correlation and secret masking."""

from libs.common.logs.json_format import JsonFormatter, MaskingFilter, configure_logging
from libs.common.logs.masking import mask_text, mask_truncated, mask_value

__all__ = ["JsonFormatter", "MaskingFilter", "configure_logging", "mask_text", "mask_truncated", "mask_value"]
