"""AES-256-GCM envelope encryption of credential secrets.

Each credential gets a random 256-bit data key (DEK).  The secret is
encrypted with the DEK; the DEK is wrapped (AES-256-GCM again) by a
key-encryption key (KEK) named by its key id.  Both layers authenticate
``tenant_id`` and ``credential_id`` as associated data, so a ciphertext copied
onto another tenant's row or another credential id fails to decrypt.

The keyring, its configuration (``IPAAS_AUTH_KEKS``, ``IPAAS_AUTH_KEKS_DIR``,
dev mode under ``IPAAS_AUTH_DEV_KEYS_DIR/keks``) and the failure classes
(:class:`KeyUnavailable`, transient in a key rollout; :class:`DecryptError`,
permanent) live in :mod:`libs.common.keyring`, shared with the gateway, which
seals webhook secrets with the same keys (:mod:`libs.common.webhook_vault`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.common.keyring import NONCE_BYTES as NONCE_BYTES
from libs.common.keyring import DecryptError as DecryptError
from libs.common.keyring import KeyRing
from libs.common.keyring import KeyUnavailable as KeyUnavailable
from libs.common.keyring import open_bytes as _open
from libs.common.keyring import parse_keks as parse_keks
from libs.common.keyring import seal_bytes as _seal


@dataclass(frozen=True, slots=True)
class Sealed:
    """What the credentials table stores for one secret."""

    kek_id: str
    wrapped_dek: bytes  # nonce || AES-GCM(KEK, DEK)
    ciphertext: bytes  # nonce || AES-GCM(DEK, secret JSON)


def _aad(layer: str, tenant_id: uuid.UUID, credential_id: uuid.UUID, kek_id: str = "") -> bytes:
    return f"ipaas:credential:v1:{layer}:{tenant_id}:{credential_id}:{kek_id}".encode()


class KekRing(KeyRing):
    """The keyring (:class:`libs.common.keyring.KeyRing`) with the credentials' envelope."""

    def encrypt(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, secret: dict[str, Any]) -> Sealed:
        dek = AESGCM.generate_key(bit_length=256)
        ciphertext = _seal(
            dek, json.dumps(secret, separators=(",", ":")).encode(), _aad("data", tenant_id, credential_id)
        )
        return Sealed(self.primary_id, self.wrap(tenant_id, credential_id, dek), ciphertext)

    def wrap(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, dek: bytes) -> bytes:
        kid = self.primary_id
        return _seal(self.key(kid), dek, _aad("dek", tenant_id, credential_id, kid))

    def unwrap(self, tenant_id: uuid.UUID, credential_id: uuid.UUID, kek_id: str, wrapped: bytes) -> bytes:
        return _open(self.key(kek_id), wrapped, _aad("dek", tenant_id, credential_id, kek_id))

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
