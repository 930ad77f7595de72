"""Signing-key selection and publication; login token buckets, and who the client is behind proxies (the key
its rate limits count against)."""

from __future__ import annotations

import uuid
from pathlib import Path
from unittest.mock import Mock

import jwt
import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from libs.common.http.client_ip import client_address, client_key, parse_hop, parse_networks, rate_key
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


def request_from(peer: str, *forwarded_for: str):
    transport = Mock()  # a mocked request has no socket: its transport names the peer
    transport.get_extra_info.return_value = (peer, 1234)
    headers = CIMultiDict(("X-Forwarded-For", value) for value in forwarded_for)
    return make_mocked_request("POST", "/", headers=headers, transport=transport)


PROXIES = parse_networks("10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # Not from a trusted proxy: the header is the client's own claim, ignored.
        ("192.0.2.5", ["198.51.100.1"], "192.0.2.5"),
        # From a proxy: the hop it appended.  Hops further left were written by the client.
        ("10.2.2.2", ["203.0.113.9, 198.51.100.1"], "198.51.100.1"),
        # Through two proxies: both skipped.
        ("10.2.2.2", ["203.0.113.9, 198.51.100.1, 10.1.1.1"], "198.51.100.1"),
        ("10.2.2.2", ["198.51.100.1, 10.1.1.1"], "198.51.100.1"),
        # Repeated header lines count as one list.
        ("10.2.2.2", ["203.0.113.9", "198.51.100.1"], "198.51.100.1"),
        # A client inside the proxies' network: every hop is trusted, the leftmost is the client.
        ("10.2.2.2", ["10.9.9.9"], "10.9.9.9"),
        # No header: the proxy itself.
        ("10.2.2.2", [], "10.2.2.2"),
        # A hop that is not an address stops the walk at the last good one.
        ("10.2.2.2", ["198.51.100.1, garbage"], "10.2.2.2"),
        # Ports and brackets are tolerated; IPv6 proxies too.
        ("fd00::7", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("10.2.2.2", ["198.51.100.1:5555"], "198.51.100.1"),
    ],
)
def test_forwarded_for_is_read_from_the_right_and_only_from_trusted_proxies(peer, forwarded, client):
    assert client_address(request_from(peer, *forwarded), PROXIES) == client


def test_with_nothing_trusted_the_peer_is_the_client():
    assert client_address(request_from("10.2.2.2", "198.51.100.1"), []) == "10.2.2.2"


def test_ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4():
    assert rate_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == rate_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert rate_key("2001:db8:1:3::1") != rate_key("2001:db8:1:2::1")
    assert rate_key("::ffff:198.51.100.1") == rate_key("198.51.100.1") == "198.51.100.1"
    assert client_key(request_from("10.2.2.2", "2001:db8:5:5::77"), PROXIES) == "2001:db8:5:5::/64"
    assert parse_hop("not an address") is None


def test_peeking_creates_no_bucket_and_spending_does():
    now = [0.0]
    buckets = TokenBuckets(burst=2, per_minute=60, max_keys=10, clock=lambda: now[0])
    assert buckets.retry_after("a") == 0 and len(buckets) == 0
    buckets.take("a")
    buckets.take("a")
    assert buckets.retry_after("a") == pytest.approx(1.0) and len(buckets) == 1
    buckets.give_back("a")
    assert buckets.retry_after("a") == 0
    now[0] += 1.0
    buckets.take("a")
    assert buckets.retry_after("a") == 0  # refilled to the burst, then one spent
