"""The vault's envelope encryption: bound to tenant and credential, re-wrappable, keyring rules."""

from __future__ import annotations

import base64
import uuid

import pytest

from libs.common.keyring import seal_bytes as _seal
from services.auth.signing_keys import KeyConfigError
from services.auth.vault import NONCE_BYTES, DecryptError, KekRing, KeyUnavailable, Sealed, _aad, parse_keks
from tests.helpers.auth_setup import new_kek

SECRET = {"webhook_url": "https://hooks.slack.com/services/T000/B000/planted-secret-value"}
# The tenant and credential a secret is sealed for.
TENANT, CRED = uuid.uuid4(), uuid.uuid4()


def ring(spec: str) -> KekRing:
    return KekRing(parse_keks(spec))


def _permanent(keks: KekRing, sealed: Sealed, tenant: uuid.UUID = TENANT, cred: uuid.UUID = CRED) -> DecryptError:
    """The error opening ``sealed`` for ``tenant``/``cred``: a decrypt error, and not the retryable kind."""
    with pytest.raises(DecryptError) as failed:
        keks.decrypt(tenant, cred, sealed)
    assert not isinstance(failed.value, KeyUnavailable), failed.value
    return failed.value


def _flipped(data: bytes, at: int = -1) -> bytes:
    """``data`` with one bit of byte ``at`` flipped."""
    changed = bytearray(data)
    changed[at] ^= 1
    return bytes(changed)


def test_round_trip_and_ciphertext_reveals_nothing() -> None:
    keks = ring(new_kek("k1"))
    sealed = keks.encrypt(TENANT, CRED, SECRET)
    assert sealed.kek_id == "k1"
    assert b"planted-secret-value" not in sealed.ciphertext + sealed.wrapped_dek
    assert keks.decrypt(TENANT, CRED, sealed) == SECRET
    # A fresh data key and nonce each time.
    again = keks.encrypt(TENANT, CRED, SECRET)
    assert again.ciphertext != sealed.ciphertext and again.wrapped_dek != sealed.wrapped_dek


def test_ciphertext_copied_to_another_tenant_or_credential_fails() -> None:
    keks = ring(new_kek("k1"))
    sealed = keks.encrypt(TENANT, CRED, SECRET)
    _permanent(keks, sealed, tenant=uuid.uuid4())
    _permanent(keks, sealed, cred=uuid.uuid4())
    # Swapping only the data layer from another credential of the same tenant fails too.
    other = keks.encrypt(TENANT, uuid.uuid4(), {"api_key": "x"})
    _permanent(keks, Sealed(sealed.kek_id, sealed.wrapped_dek, other.ciphertext))
    # A flipped bit fails.
    _permanent(keks, Sealed(sealed.kek_id, sealed.wrapped_dek, _flipped(sealed.ciphertext)))


def test_first_kek_encrypts_all_decrypt_and_rewrap_moves_to_the_first() -> None:
    old_spec, new_spec = new_kek("old"), new_kek("new")
    old_ring = ring(old_spec)
    sealed = old_ring.encrypt(TENANT, CRED, SECRET)
    both = ring(f"{new_spec},{old_spec}")
    assert both.decrypt(TENANT, CRED, sealed) == SECRET
    assert both.encrypt(TENANT, CRED, SECRET).kek_id == "new"
    moved = both.rewrap(TENANT, CRED, sealed)
    assert moved.kek_id == "new" and moved.ciphertext == sealed.ciphertext
    assert ring(new_spec).decrypt(TENANT, CRED, moved) == SECRET
    with pytest.raises(DecryptError):
        old_ring.decrypt(TENANT, CRED, moved)


@pytest.mark.parametrize(
    "spec",
    [
        "nokid",
        "k1:not base64!",
        "k1:" + base64.b64encode(bytes(range(16))).decode(),  # AES-128 is refused
        "bad kid:" + base64.b64encode(bytes(range(32))).decode(),
        "",
    ],
)
def test_bad_keyring_config_is_refused(spec: str) -> None:
    with pytest.raises(KeyConfigError):
        KekRing(parse_keks(spec))


def test_an_unknown_kek_id_is_key_unavailable_a_failed_tag_is_not() -> None:
    """A key rollout (the row names a KEK this replica has not loaded) is told apart from tampering."""
    old_spec, new_spec = new_kek("old"), new_kek("new")
    sealed = ring(f"{new_spec},{old_spec}").encrypt(TENANT, CRED, SECRET)
    lagging = ring(old_spec)  # a replica that has not picked up the new KEK yet
    with pytest.raises(KeyUnavailable) as unavailable:
        lagging.decrypt(TENANT, CRED, sealed)
    assert unavailable.value.kek_id == "new"
    with pytest.raises(KeyUnavailable):
        lagging.rewrap(TENANT, CRED, sealed)
    # Once the replica holds the key, the same row opens.
    assert ring(f"{old_spec},{new_spec}").decrypt(TENANT, CRED, sealed) == SECRET


def test_failed_authentication_and_malformed_bytes_are_permanent_decrypt_errors() -> None:
    keks = ring(new_kek("k1"))
    sealed = keks.encrypt(TENANT, CRED, SECRET)
    # The key id is known but bound to a different key (a misconfigured replica): the tag fails.
    impostor = ring(new_kek("k1"))
    assert "authentication failed" in str(_permanent(impostor, sealed))
    # Tampered wrapped data key, tampered ciphertext (bytes moved to another tenant or credential: above).
    _permanent(keks, Sealed("k1", _flipped(sealed.wrapped_dek), sealed.ciphertext))
    _permanent(keks, Sealed("k1", sealed.wrapped_dek, _flipped(sealed.ciphertext, NONCE_BYTES)))
    # Truncated bytes.
    _permanent(keks, Sealed("k1", sealed.wrapped_dek[:NONCE_BYTES], sealed.ciphertext))
    # Sealed correctly but not a JSON object: malformed, not retryable.
    not_object = keks.encrypt(TENANT, CRED, SECRET)
    not_object = Sealed("k1", not_object.wrapped_dek, _reseal_data(keks, not_object, b"[1, 2]"))
    assert "not an object" in str(_permanent(keks, not_object))
    not_json = Sealed("k1", sealed.wrapped_dek, _reseal_data(keks, sealed, b"\xff not json"))
    assert "not JSON" in str(_permanent(keks, not_json))


def _reseal_data(keks: KekRing, sealed: Sealed, plaintext: bytes) -> bytes:
    """``plaintext`` sealed under ``sealed``'s own data key, as a writer with the key could do."""
    dek = keks.unwrap(TENANT, CRED, sealed.kek_id, sealed.wrapped_dek)
    return _seal(dek, plaintext, _aad("data", TENANT, CRED))
