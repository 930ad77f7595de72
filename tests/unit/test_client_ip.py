"""Who the client is behind proxies, and the key its rate limits count against."""

from __future__ import annotations

from unittest.mock import Mock

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from libs.common.http.client_ip import client_address, client_key, parse_hop, parse_networks, rate_key
from libs.common.ratelimit import TokenBuckets


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
