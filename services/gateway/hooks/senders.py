"""Signatures of the webhook senders people have, beside Standard Webhooks (``signature.py``).

Each scheme checks a request against the workflow's keys (the secret the
sender gave the user, as bytes; several while a rotation overlaps) and
returns the sender's own delivery id when it has one, which then becomes the
event's dedup key: a redelivery is a duplicate. Without one, the dedup key is
the hash of the body. Comparisons are constant time and never stop at the
first key; a failure raises :class:`SignatureError` saying why (never the
secret), and a signature that matches no key says which secret it must be.

- ``github``: ``X-Hub-Signature-256: sha256=<hex>`` of the body; delivery id ``X-GitHub-Delivery``.
- ``stripe``: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`` of ``<t>.<body>``, ``t`` within the
  tolerance; delivery id: the event's ``id`` in the body.
- ``shopify``: ``X-Shopify-Hmac-Sha256: <base64>`` of the body; delivery id ``X-Shopify-Webhook-Id``.
- ``slack``: ``X-Slack-Signature: v0=<hex>`` of ``v0:<ts>:<body>`` with ``X-Slack-Request-Timestamp``
  within the tolerance; delivery id: the body's ``event_id``.
- ``hmac-sha256``: a configurable header (``X-Signature``), hex or base64, an optional prefix, of the
  body; no delivery id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from services.gateway.hooks.signature import SignatureError, matches

MAX_SIGNATURE_HEADER = 1024
MAX_DELIVERY_ID = 200
Encoding = Literal["hex", "base64"]


@dataclass(frozen=True, slots=True)
class HmacOptions:
    """The ``hmac-sha256`` scheme's settings (from the workflow's trigger)."""

    header: str = "X-Signature"
    encoding: Encoding = "hex"
    prefix: str = ""


# A workflow made with a sender's scheme starts with a generated secret; until the user sets the one the
# sender signs with (or gives the sender ours, where it lets them choose), every request fails here.
WHICH_KEY_HINT = (
    "the workflow's secret must be the one the sender signs with "
    '(set it with POST /api/workflows/{id}/webhook-secret {"secret": ...})'
)


def mismatch(what: str) -> str:
    """The error of a signature that matches no key, with what to check (never the secret)."""
    return f"{what}: {WHICH_KEY_HINT}"


def body_key(body: bytes) -> str:
    """The dedup key of a delivery that carries no id of its own."""
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureError(f"missing {name} header")
    if len(value) > MAX_SIGNATURE_HEADER:
        raise SignatureError(f"{name} header is too long")
    return value


def _decode(value: str, encoding: Encoding) -> bytes | None:
    try:
        return bytes.fromhex(value) if encoding == "hex" else base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _fresh(timestamp: str, now: float, tolerance: int, name: str) -> None:
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise SignatureError(f"{name} is not a unix time")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError(f"{name} is outside the tolerance")


def _delivery_id(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if 0 < len(value) <= MAX_DELIVERY_ID and value.isprintable() else None


def _body_field(body: bytes, name: str) -> str | None:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = document.get(name) if isinstance(document, dict) else None
    return _delivery_id(value) if isinstance(value, str) else None


def _check(keys: tuple[bytes, ...], signed: bytes, candidate: bytes | None, header: str) -> None:
    if candidate is None or not matches(keys, signed, [candidate]):
        raise SignatureError(mismatch(f"{header} does not match"))


def github(headers: Mapping[str, str], body: bytes, keys: tuple[bytes, ...]) -> str | None:
    value = _header(headers, "X-Hub-Signature-256")
    scheme, _, digest = value.partition("=")
    candidate = _decode(digest, "hex") if scheme == "sha256" else None
    _check(keys, body, candidate, "X-Hub-Signature-256")
    return _delivery_id(headers.get("X-GitHub-Delivery"))


def stripe(
    headers: Mapping[str, str], body: bytes, keys: tuple[bytes, ...], *, now: float, tolerance: int
) -> str | None:
    value = _header(headers, "Stripe-Signature")
    timestamp = ""
    candidates: list[bytes] = []
    for item in value.split(","):
        name, _, part = item.strip().partition("=")
        if name == "t":
            timestamp = part
        elif name == "v1":
            decoded = _decode(part, "hex")
            if decoded is not None:
                candidates.append(decoded)
    if not timestamp or not candidates:
        raise SignatureError("Stripe-Signature has no t= or no v1= signature")
    _fresh(timestamp, now, tolerance, "the Stripe-Signature timestamp")
    if not matches(keys, timestamp.encode() + b"." + body, candidates):
        raise SignatureError(mismatch("no Stripe-Signature v1 signature matches"))
    return _body_field(body, "id")


def shopify(headers: Mapping[str, str], body: bytes, keys: tuple[bytes, ...]) -> str | None:
    candidate = _decode(_header(headers, "X-Shopify-Hmac-Sha256").strip(), "base64")
    _check(keys, body, candidate, "X-Shopify-Hmac-Sha256")
    return _delivery_id(headers.get("X-Shopify-Webhook-Id"))


def slack(
    headers: Mapping[str, str], body: bytes, keys: tuple[bytes, ...], *, now: float, tolerance: int
) -> str | None:
    timestamp = _header(headers, "X-Slack-Request-Timestamp")
    _fresh(timestamp, now, tolerance, "X-Slack-Request-Timestamp")
    version, _, digest = _header(headers, "X-Slack-Signature").partition("=")
    candidate = _decode(digest, "hex") if version == "v0" else None
    _check(keys, b"v0:" + timestamp.encode() + b":" + body, candidate, "X-Slack-Signature")
    return _body_field(body, "event_id")


def hmac_sha256(headers: Mapping[str, str], body: bytes, keys: tuple[bytes, ...], options: HmacOptions) -> None:
    value = _header(headers, options.header).strip()
    if options.prefix:
        if not value.startswith(options.prefix):
            raise SignatureError(f"{options.header} does not start with {options.prefix!r}")
        value = value[len(options.prefix) :]
    candidate = _decode(value, options.encoding)
    _check(keys, body, candidate, options.header)


def slack_challenge(body: bytes) -> str | None:
    """The ``challenge`` of Slack's ``url_verification`` request (answered once the signature checks)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(document, dict) and document.get("type") == "url_verification":
        challenge = document.get("challenge")
        if isinstance(challenge, str) and 0 < len(challenge) <= 200:
            return challenge
    return None
