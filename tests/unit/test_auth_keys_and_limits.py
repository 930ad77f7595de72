"""Signing-key selection and publication, and login token buckets (client addresses: test_client_ip.py)."""

from __future__ import annotations

import uuid
from pathlib import Path

import jwt
import pytest

from services.auth.rate_limit import TokenBuckets
from services.auth.signing_keys import KeyConfigError, activation_time, load_signing_keys
from services.auth.tokens import TokenService
from tests.helpers.auth_setup import new_signing_pem


def _write(directory: Path, name: str) -> str:
    pem, kid = new_signing_pem()
    (directory / name).write_text(pem)
    return kid


def test_latest_active_key_signs_and_every_file_is_published(tmp_path: Path) -> None:
    old = _write(tmp_path, "2026-01-01.pem")
    current = _write(tmp_path, "20260601T000000Z.pem")
    future = _write(tmp_path, "20990101T000000Z.pem")
    ring = load_signing_keys(env_pem=None, keys_dir=tmp_path, dev_mode=False, dev_dir=tmp_path / "dev")
    assert ring.signer.kid == current
    assert {k["kid"] for k in ring.jwks()["keys"]} == {old, current, future}
    assert all(k["alg"] == "EdDSA" and k["crv"] == "Ed25519" and "d" not in k for k in ring.jwks()["keys"])
    later = load_signing_keys(
        env_pem=None, keys_dir=tmp_path, dev_mode=False, dev_dir=tmp_path, now=activation_time("20990101T000001Z")
    )
    assert later.signer.kid == future


def test_tokens_carry_the_signer_kid_and_all_claims(tmp_path: Path) -> None:
    pem, kid = new_signing_pem()
    ring = load_signing_keys(env_pem=pem, keys_dir=None, dev_mode=False, dev_dir=tmp_path)
    service = TokenService(ring, issuer="ipaas", audience="ipaas-api", ttl_seconds=900)
    issued = service.issue(uuid.uuid4(), uuid.uuid4())
    header = jwt.get_unverified_header(issued.access_token)
    assert header["kid"] == kid and header["typ"] == "at+jwt"
    claims = service.verify(issued.access_token).raw
    assert set(claims) == {"iss", "aud", "sub", "tid", "iat", "nbf", "exp", "jti"}
    assert claims["exp"] - claims["iat"] == 900


def test_no_key_outside_dev_mode_is_a_clear_error_and_dev_mode_persists(tmp_path: Path) -> None:
    with pytest.raises(KeyConfigError, match="no signing key"):
        load_signing_keys(env_pem=None, keys_dir=None, dev_mode=False, dev_dir=tmp_path)
    first = load_signing_keys(env_pem=None, keys_dir=None, dev_mode=True, dev_dir=tmp_path)
    second = load_signing_keys(env_pem=None, keys_dir=None, dev_mode=True, dev_dir=tmp_path)
    assert first.kids == second.kids
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.pem").write_text("not a key")
    with pytest.raises(KeyConfigError, match="not a readable PEM"):
        load_signing_keys(env_pem=None, keys_dir=tmp_path / "bad", dev_mode=False, dev_dir=tmp_path)


def test_token_bucket_refills_over_time_and_caps_keys() -> None:
    now = [1000.0]
    buckets = TokenBuckets(burst=2, per_minute=6, max_keys=100, clock=lambda: now[0])
    for _ in range(2):
        assert buckets.retry_after("a") == 0
        buckets.take("a")
    assert buckets.retry_after("a") == pytest.approx(10.0)
    now[0] += 10
    assert buckets.retry_after("a") == 0
    for i in range(500):
        buckets.take(f"k{i}")
    assert len(buckets._buckets) <= 100
