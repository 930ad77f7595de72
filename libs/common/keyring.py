"""Key-encryption keys (KEKs): the keyring, how it is configured, and AES-256-GCM sealing.

One keyring serves everything sealed at rest: auth's credential vault
(``services/auth/vault.py``) and the gateway's webhook secrets
(:mod:`libs.common.webhook_vault`).  Each caller binds its bytes with
associated data of its own, so what one seals cannot be opened as the other.

Configuration (the same variables wherever it is read):
``IPAAS_AUTH_KEKS="kid1:base64key,kid2:base64key"`` (the first seals, all open)
and/or ``IPAAS_AUTH_KEKS_DIR`` with ``<kid>.key`` files holding a base64 key
(the file whose name sorts last seals, after any env keys).  Dev mode
generates one under ``<dev dir>/keks``.

Failures are classified, because callers react differently:

- :class:`KeyUnavailable`: the bytes name a KEK id this keyring does not hold.
  During a key rollout a replica may not have loaded the new key yet; asking
  again later (or another replica) can succeed.
- :class:`DecryptError` (any other): an AES-GCM authentication tag did not
  verify (tampered bytes, bytes copied onto another row, a key id bound to a
  different key), or the sealed bytes are malformed.  Asking again cannot help.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
NONCE_BYTES = 12
R = TypeVar("R", bound="KeyRing")


class KeyConfigError(Exception):
    """Keys are missing or unreadable; the service cannot start."""


class DecryptError(Exception):
    """The sealed bytes do not open with this keyring for this owner (permanent)."""


class KeyUnavailable(DecryptError):
    """The sealed data key names a KEK id that this keyring does not hold (transient in a rollout)."""

    def __init__(self, kek_id: str) -> None:
        super().__init__(f"unknown KEK {kek_id!r}")
        self.kek_id = kek_id


def seal_bytes(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || AES-256-GCM(key, plaintext, aad)."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_bytes(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) <= NONCE_BYTES:
        raise DecryptError("ciphertext too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise DecryptError("authentication failed") from exc


class KeyRing:
    """KEKs by id; the first one seals."""

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
        """The KEK named ``kek_id``; :class:`KeyUnavailable` when this ring does not hold it."""
        kek = self._keks.get(kek_id)
        if kek is None:
            raise KeyUnavailable(kek_id)
        return kek


class KeyHolder(Generic[R]):
    """The current keyring, replaced as a whole when the keys are reloaded: readers take ``ring`` each time."""

    def __init__(self, ring: R) -> None:
        self.ring = ring


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


def load_keks(*, env_spec: str | None, keys_dir: Path | None, dev_mode: bool, dev_dir: Path) -> list[tuple[str, bytes]]:
    """The configured KEKs, first the one that seals.  Blocking (file I/O): call it from a thread."""
    keks = parse_keks(env_spec) if env_spec else []
    if keys_dir is not None:
        if not keys_dir.is_dir():
            raise KeyConfigError(f"IPAAS_AUTH_KEKS_DIR {keys_dir} is not a directory")
        keks.extend(_read_dir(keys_dir))
    if keks:
        return keks
    if not dev_mode:
        raise KeyConfigError(
            "no key-encryption key: set IPAAS_AUTH_KEKS or IPAAS_AUTH_KEKS_DIR "
            "(keys are generated only with IPAAS_DEV_MODE=true)"
        )
    directory = dev_dir / "keks"
    write_dev_key(
        directory, "dev-", ".key", lambda: base64.b64encode(AESGCM.generate_key(bit_length=256)), "key-encryption key"
    )
    return _read_dir(directory)


def write_dev_key(directory: Path, prefix: str, suffix: str, make: Callable[[], bytes], what: str) -> None:
    """Dev mode: unless ``directory`` holds a ``*<suffix>`` file, write the key ``make()`` gives into one.

    The directory is made 0700 and the file 0600, named by the UTC time: ``<prefix><time><suffix>``.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(directory.glob(f"*{suffix}")):
        return
    path = directory / (prefix + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + suffix)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another service of this dev install made it in the same second
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(make())
    log.warning(f"dev mode: generated a {what}", extra={"path": str(path)})


def _read_dir(directory: Path) -> list[tuple[str, bytes]]:
    files = sorted(directory.glob("*.key"), reverse=True)  # the name that sorts last comes first
    return [(p.stem, _decode_key(p.stem, p.read_text())) for p in files]
