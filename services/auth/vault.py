"""AES-256-GCM envelope encryption of credential secrets.

Each credential gets a random 256-bit data key (DEK).  The secret is
encrypted with the DEK; the DEK is wrapped (AES-256-GCM again) by a
key-encryption key (KEK) named by its key id.  Both layers authenticate
``tenant_id`` and ``credential_id`` as associated data, so a ciphertext copied
onto another tenant's row or another credential id fails to decrypt.

Keyring: ``IPAAS_AUTH_KEKS="kid1:base64key,kid2:base64key"`` (the first
encrypts, all decrypt) and/or ``IPAAS_AUTH_KEKS_DIR`` with ``<kid>.key`` files
holding a base64 key (the file whose name sorts last encrypts, after any env
keys).  Dev mode generates one under ``IPAAS_AUTH_DEV_KEYS_DIR/keks``.

Failures are classified, because callers react differently:

- :class:`KeyUnavailable`: the row names a KEK id this keyring does not hold.
  During a key rollout a replica may not have loaded the new key yet; asking
  again later (or another replica) can succeed.
- :class:`DecryptError` (any other): an AES-GCM authentication tag did not
  verify (tampered bytes, bytes copied onto another tenant or credential, a key
  id bound to a different key), or the sealed bytes are malformed.  Asking
  again cannot help.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.auth.signing_keys import KeyConfigError

log = logging.getLogger(__name__)

KID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
NONCE_BYTES = 12


class DecryptError(Exception):
    """The ciphertext does not open with this keyring for this tenant and credential (permanent)."""


class KeyUnavailable(DecryptError):
    """The sealed data key names a KEK id that this keyring does not hold (transient in a rollout)."""

    def __init__(self, kek_id: str) -> None:
        super().__init__(f"unknown KEK {kek_id!r}")
        self.kek_id = kek_id


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the credentials table stores for one secret."""

    kek_id: str
    wrapped_dek: bytes  # nonce || AES-GCM(KEK, DEK)
    ciphertext: bytes  # nonce || AES-GCM(DEK, secret JSON)


def _aad(layer: str, tenant_id: uuid.UUID, credential_id: uuid.UUID, kek_id: str = "") -> bytes:
    return f"ipaas:credential:v1:{layer}:{tenant_id}:{credential_id}:{kek_id}".encode()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) <= NONCE_BYTES:
        raise DecryptError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise DecryptError("authentication failed") from exc


class KekRing:
    def __init__(self, keks: list[tuple[str, bytes]]) -> None:
        if not keks:
            raise KeyConfigError("no key-encryption key")
        self._keks: dict[str, bytes] = {}
        for kid, key in keks:
            if not KID_RE.match(kid):
                raise KeyConfigError(f"KEK id {kid!r} must match {KID_RE.pattern}")
            if len(key) != 32:
                raise KeyConfigError(f"KEK {kid!r} must be 32 bytes (AES-256), got {len(key)}")
            if kid in self._keks and self._keks[kid] != key:
                raise KeyConfigError(f"KEK id {kid!r} is defined twice with different keys")
            self._keks.setdefault(kid, key)
        self.primary_id = keks[0][0]

    @property
    def kids(self) -> list[str]:
        return list(self._keks)

    def key(self, kek_id: str) -> bytes:
        """The KEK named ``kek_id`` (for the other things sealed with it: ``webhook_vault``)."""
        kek = self._keks.get(kek_id)
        if kek is None:
            raise KeyUnavailable(kek_id)
        return kek

    def encrypt(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, secret: dict[str, Any]) -> Sealed:
        dek = AESGCM.generate_key(bit_length=256)
        ciphertext = _seal(dek, json.dumps(secret, separators=(",", ":")).encode(),
                           _aad("data", tenant_id, credential_id))
        return Sealed(self.primary_id, self.wrap(tenant_id, credential_id, dek), ciphertext)

    def wrap(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, dek: bytes) -> bytes:
        kid = self.primary_id
        return _seal(self._keks[kid], dek, _aad("dek", tenant_id, credential_id, kid))

    def unwrap(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, kek_id: str, wrapped: bytes) -> bytes:
        kek = self._keks.get(kek_id)
        if kek is None:
            raise KeyUnavailable(kek_id)
        return _open(kek, wrapped, _aad("dek", tenant_id, credential_id, kek_id))

    def decrypt(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, sealed: Sealed) -> dict[str, Any]:
        dek = self.unwrap(tenant_id, credential_id, sealed.kek_id, sealed.wrapped_dek)
        plaintext = _open(dek, sealed.ciphertext, _aad("data", tenant_id, credential_id))
        try:
            value = json.loads(plaintext)
        except ValueError as exc:
            raise DecryptError("secret is not JSON") from exc
        if not isinstance(value, dict):
            raise DecryptError("secret is not an object")
        return value

    def rewrap(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, sealed: Sealed) -> Sealed:
        """The same ciphertext with its DEK wrapped by the primary KEK."""
        dek = self.unwrap(tenant_id, credential_id, sealed.kek_id, sealed.wrapped_dek)
        return Sealed(self.primary_id, self.wrap(tenant_id, credential_id, dek), sealed.ciphertext)


def _decode_key(kid: str, text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyConfigError(f"KEK {kid!r} is not valid base64") from exc


def parse_keks(spec: str) -> list[tuple[str, bytes]]:
    keks: list[tuple[str, bytes]] = []
    for part in spec.split(","):
        if not part.strip():
            continue
        kid, sep, value = part.strip().partition(":")
        if not sep:
            raise KeyConfigError("IPAAS_AUTH_KEKS entries are kid:base64key")
        keks.append((kid, _decode_key(kid, value)))
    return keks


def load_kek_ring(*, env_spec: str | None, keys_dir: Path | None, dev_mode: bool, dev_dir: Path) -> KekRing:
    """Blocking (file I/O): call it from a thread once the loop runs."""
    keks = parse_keks(env_spec) if env_spec else []
    if keys_dir is not None:
        if not keys_dir.is_dir():
            raise KeyConfigError(f"IPAAS_AUTH_KEKS_DIR {keys_dir} is not a directory")
        keks.extend(_read_dir(keys_dir))
    if keks:
        return KekRing(keks)
    if not dev_mode:
        raise KeyConfigError(
            "no key-encryption key: set IPAAS_AUTH_KEKS or IPAAS_AUTH_KEKS_DIR "
            "(keys are generated only with IPAAS_DEV_MODE=true)"
        )
    directory = dev_dir / "keks"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not any(directory.glob("*.key")):
        path = directory / ("dev-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".key")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
        log.warning("dev mode: generated a key-encryption key", extra={"path": str(path)})
    return KekRing(_read_dir(directory))


def _read_dir(directory: Path) -> list[tuple[str, bytes]]:
    files = sorted(directory.glob("*.key"), reverse=True)  # the name that sorts last comes first
    return [(p.stem, _decode_key(p.stem, p.read_text())) for p in files]
