"""What fits in one NATS message, checked before a publish.

The server's ``max_payload`` bounds headers and payload together, but the
client checks the payload alone: a message whose headers push it over the
limit is sent, and the server answers with a protocol error that resets the
whole connection (every publish in flight on it fails).  So a publisher of
messages it does not control the size of (:meth:`Bus.publish_event`, the
gateway's outbox relay) measures the full message first and refuses it itself.
"""

from __future__ import annotations

from collections.abc import Mapping

# "NATS/1.0\r\n" before the headers, "\r\n" after them.
_HEADER_FRAME = len(b"NATS/1.0\r\n") + len(b"\r\n")
# ": " and "\r\n" around each header's value.
_PER_HEADER = len(b": ") + len(b"\r\n")


def message_size(payload: bytes, headers: Mapping[str, str]) -> int:
    """Bytes the server counts against ``max_payload``: the header block plus the payload."""
    if not headers:
        return len(payload)
    block = _HEADER_FRAME + sum(len(k.encode()) + len(v.encode()) + _PER_HEADER for k, v in headers.items())
    return block + len(payload)
