"""Webhook secrets (``whsec_...``) sealed at rest with the vault's key-encryption keys.

The same envelope as auth's credentials: each stored
secret gets a random 256-bit data key; the secret is sealed with it and the
data key is wrapped by a KEK, both AES-256-GCM.  The associated data is a
namespace of its own (``ipaas:webhook-secret:v1``) and binds both layers to
the tenant, the workflow and the secret's row id (the wrapping to the KEK id
as well), so bytes copied onto another row, workflow or tenant, or between a
credential and a webhook secret, do not open.

The gateway seals and opens (it verifies signatures); auth's ``rotate-keys``
only re-wraps data keys, so it never reads a secret.  Both use the keyring of
:mod:`libs.common.keyring`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.common.keyring import DecryptError, KeyRing, open_bytes, seal_bytes

__all__ = ["DecryptError", "SealedSecret", "open_secret", "rewrap", "seal"]


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """What ``webhook_secrets`` stores for one secret."""

    kek_id: str
    wrapped_dek: bytes  # nonce || AES-GCM(KEK, DEK)
    ciphertext: bytes  # nonce || AES-GCM(DEK, secret)


def _aad(layer: str, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret_id: uuid.UUID, kek_id: str = "") -> bytes:
    return f"ipaas:webhook-secret:v1:{layer}:{tenant_id}:{workflow_id}:{secret_id}:{kek_id}".encode()


def _wrap(
    ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret_id: uuid.UUID, dek: bytes
) -> tuple[str, bytes]:
    kid = ring.primary_id
    return kid, seal_bytes(ring.key(kid), dek, _aad("dek", tenant_id, workflow_id, secret_id, kid))


def _unwrap(
    ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret_id: uuid.UUID, kek_id: str, wrapped: bytes
) -> bytes:
    return open_bytes(ring.key(kek_id), wrapped, _aad("dek", tenant_id, workflow_id, secret_id, kek_id))


def seal(
    ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret_id: uuid.UUID, secret: str
) -> SealedSecret:
    dek = AESGCM.generate_key(bit_length=256)
    ciphertext = seal_bytes(dek, secret.encode(), _aad("data", tenant_id, workflow_id, secret_id))
    kid, wrapped = _wrap(ring, tenant_id, workflow_id, secret_id, dek)
    return SealedSecret(kid, wrapped, ciphertext)


def open_secret(
    ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret_id: uuid.UUID, sealed: SealedSecret
) -> str:
    """The secret; :class:`DecryptError` (``KeyUnavailable`` for a KEK this ring lacks) otherwise."""
    dek = _unwrap(ring, tenant_id, workflow_id, secret_id, sealed.kek_id, sealed.wrapped_dek)
    plaintext = open_bytes(dek, sealed.ciphertext, _aad("data", tenant_id, workflow_id, secret_id))
    try:
        return plaintext.decode()
    except UnicodeDecodeError as exc:
        raise DecryptError("webhook secret is not text") from exc


def rewrap(
    ring: KeyRing, tenant_id: uuid.UUID, workflow_id: uuid.UUID, secret_id: uuid.UUID, kek_id: str, wrapped: bytes
) -> tuple[str, bytes]:
    """The data key wrapped by the primary KEK: (its id, the new wrapping); the ciphertext stays."""
    dek = _unwrap(ring, tenant_id, workflow_id, secret_id, kek_id, wrapped)
    return _wrap(ring, tenant_id, workflow_id, secret_id, dek)
