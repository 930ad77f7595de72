"""Ed25519 signing keys: loaded from the environment or a directory, published as a JWKS.

- ``IPAAS_AUTH_SIGNING_KEY``: one PEM (PKCS#8) private key.
- ``IPAAS_AUTH_SIGNING_KEYS_DIR``: ``*.pem`` files, all published.  A file's
  name is the UTC time it starts signing (``20261121T100000Z.pem`` or
  ``2026-11-21.pem``); the latest key whose time has come signs.  Publish a
  new key a while before its time (longer than verifiers cache the JWKS,
  5 minutes) so every verifier knows it before the first token it signs.
  Older keys stay published, so tokens they signed keep verifying until
  their file is removed (after at least one token lifetime).  A name that is
  not a time counts as "active since forever" and sorts by name.  A key from
  the environment signs ahead of the directory's keys.
- Dev mode only: with neither set, a key is generated once and kept under
  ``IPAAS_AUTH_DEV_KEYS_DIR/signing`` so restarts keep it.

A key's ``kid`` is its RFC 7638 thumbprint: stable, and the same on every replica.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from libs.common.keyring import KeyConfigError as KeyConfigError  # shared by every key this service loads
from libs.common.keyring import write_dev_key

log = logging.getLogger(__name__)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    source: str
    # When the key starts signing (Unix time, from its file name); 0 means "active at once".
    active_from: float = 0.0

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def public_jwk(self) -> dict[str, str]:
        x = _b64url(self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
        return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": self.kid, "alg": "EdDSA", "use": "sig"}


def thumbprint(public: Ed25519PublicKey) -> str:
    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def key_from_pem(pem: bytes, source: str, active_from: float = 0.0) -> SigningKey:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyConfigError(f"signing key {source} is not a readable PEM private key") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyConfigError(f"signing key {source} is not an Ed25519 key")
    return SigningKey(kid=thumbprint(private.public_key()), private=private, source=source, active_from=active_from)


def pem_of(private: Ed25519PrivateKey) -> bytes:
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class SigningKeyRing:
    """Every published key (in load order) and the one that signs.

    The signer is the last key whose activation time has passed, or the
    earliest key when none has (a misconfiguration, logged).
    """

    def __init__(self, keys: list[SigningKey], *, now: float | None = None) -> None:
        if not keys:
            raise KeyConfigError("no signing key")
        unique: dict[str, SigningKey] = {}
        for key in keys:
            unique.pop(key.kid, None)
            unique[key.kid] = key
        self._keys = list(unique.values())
        current = time.time() if now is None else now
        active = [k for k in self._keys if k.active_from <= current]
        if not active:
            log.warning("no signing key is active yet; signing with the earliest", extra={"kid": self._keys[0].kid})
        self._signer = active[-1] if active else self._keys[0]

    @property
    def signer(self) -> SigningKey:
        return self._signer

    @property
    def kids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def public_key(self, kid: str) -> Ed25519PublicKey | None:
        return next((key.public for key in self._keys if key.kid == kid), None)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in reversed(self._keys)]}


def load_signing_keys(
    *,
    env_pem: str | None,
    keys_dir: Path | None,
    dev_mode: bool,
    dev_dir: Path,
    now: float | None = None,
) -> SigningKeyRing:
    """Blocking (file I/O): call it from a thread once the loop runs."""
    keys: list[SigningKey] = []
    if keys_dir is not None:
        if not keys_dir.is_dir():
            raise KeyConfigError(f"IPAAS_AUTH_SIGNING_KEYS_DIR {keys_dir} is not a directory")
        keys.extend(_read_dir(keys_dir))
    if env_pem:
        keys.append(key_from_pem(env_pem.replace("\\n", "\n").encode(), "IPAAS_AUTH_SIGNING_KEY"))
    if keys:
        return SigningKeyRing(keys, now=now)
    if not dev_mode:
        raise KeyConfigError(
            "no signing key: set IPAAS_AUTH_SIGNING_KEY or IPAAS_AUTH_SIGNING_KEYS_DIR "
            "(keys are generated only with IPAAS_DEV_MODE=true)"
        )
    write_dev_key(dev_dir / "signing", "", ".pem", lambda: pem_of(Ed25519PrivateKey.generate()), "signing key")
    return SigningKeyRing(_read_dir(dev_dir / "signing"))


TIME_FORMATS = ("%Y%m%dT%H%M%SZ", "%Y-%m-%dT%H-%M-%SZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%d", "%Y-%m-%d")


def activation_time(name: str) -> float:
    """The UTC time a file name stands for, or 0 when it is not a time."""
    for fmt in TIME_FORMATS:
        with contextlib.suppress(ValueError):
            return datetime.strptime(name, fmt).replace(tzinfo=UTC).timestamp()
    return 0.0


def _read_dir(directory: Path) -> list[SigningKey]:
    keys = [key_from_pem(p.read_bytes(), p.name, activation_time(p.stem)) for p in directory.glob("*.pem")]
    return sorted(keys, key=lambda k: (k.active_from, k.source))
