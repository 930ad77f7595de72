"""Acceptance 7: the SSRF matrix on ``http_request`` is refused, with a clear error recorded."""

from __future__ import annotations

import ipaddress

import pytest

from libs.common.http.client_ip import parse_networks
from services.executor.connectors.ssrf import EgressGuard, EgressRefused
from tests.helpers.factories import create_tenant, create_workflow
from tests.helpers.fakes import Answer, always, definition, final_row, publish_event


def _matrix(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/hook",
        f"http://localhost:{port}/hook",
        f"http://[::1]:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        f"http://[2002:7f00:1::]:{port}/hook",  # 6to4 form of 127.0.0.1
        f"http://[64:ff9b::7f00:1]:{port}/hook",  # NAT64 form of 127.0.0.1
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/admin",  # Teredo form of 10.0.0.1
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/admin",
        f"http://2130706433:{port}/hook",
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{port}/_PING",
    ]


async def test_ssrf_matrix_is_refused_with_an_empty_allow_list(bus, db, sink, executor):
    tenant = await create_tenant(db)
    urls = _matrix(sink.port)
    workflows = [
        await create_workflow(db, tenant, definition("http_request", {"method": "POST", "url": url, "body": {"x": 1}}))
        for url in urls
    ]
    await executor(IPAAS_EGRESS_ALLOW_CIDRS="")
    events = [await publish_event(bus, tenant, wf, {}) for wf in workflows]
    for url, event in zip(urls, events, strict=True):
        row = await final_row(db, event.event_id)
        assert row["status"] == "dead", url
        assert row["attempts"] == 1, url
        assert row["error"].startswith("refused:"), (url, row["error"])
    assert sink.calls == 0


async def test_redirect_to_loopback_is_refused(bus, db, sinks, executor, tenant_id):
    inner = await sinks()  # 127.0.0.1: must never be reached
    outer = await sinks(always(Answer(302, "", {"Location": f"{inner.url}/internal"})), host="127.0.0.2")
    wf = await create_workflow(db, tenant_id, definition("http_request", {"method": "GET", "url": f"{outer.url}/r"}))
    await executor(IPAAS_EGRESS_ALLOW_CIDRS="127.0.0.2/32")
    event = await publish_event(bus, tenant_id, wf, {})
    row = await final_row(db, event.event_id)
    assert row["status"] == "dead"
    assert row["error"].startswith("refused:") and "127.0.0.1" in row["error"]
    assert outer.calls == 1 and inner.calls == 0


@pytest.mark.parametrize(
    ("address", "says"),
    [
        ("127.0.0.1", ""),
        ("::1", ""),
        ("::ffff:127.0.0.1", ""),
        ("169.254.169.254", ""),
        ("10.0.0.1", ""),
        ("192.168.1.1", ""),
        ("172.16.0.1", ""),
        ("224.0.0.1", ""),
        ("0.0.0.0", ""),  # noqa: S104
        ("fe80::1", ""),
        ("fc00::1", ""),
        ("2002:7f00:1::", "a 6to4 form of a loopback address (127.0.0.1)"),
        ("2002:a9fe:a9fe::1", "a 6to4 form of a link-local address (169.254.169.254)"),
        ("2002:c0a8:101::", "a 6to4 form of a private address (192.168.1.1)"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "a Teredo form of a private address (10.0.0.1)"),
        ("64:ff9b::7f00:1", "a NAT64 form of a loopback address (127.0.0.1)"),
        ("64:ff9b::a9fe:a9fe", "a NAT64 form of a link-local address (169.254.169.254)"),
        ("64:ff9b:1::a00:1", "a NAT64 form of a private address (10.0.0.1)"),
        # Teredo of a public client: still a non-public destination.
        ("2001:0:4136:e378:8000:63bf:a247:2ddd", ""),
    ],
)
def test_guard_refuses_non_public_addresses_and_their_6to4_teredo_and_nat64_forms(address: str, says: str) -> None:
    with pytest.raises(EgressRefused) as refused:
        EgressGuard([]).check_address("h", ipaddress.ip_address(address))
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("allowed", "address"),
    [
        ("", "93.184.216.34"),
        ("10.0.0.0/8", "10.1.2.3"),
        ("", "2002:5db8:d822::1"),  # 6to4 of 93.184.216.34
        ("", "64:ff9b::5db8:d822"),  # NAT64 of 93.184.216.34
    ],
)
def test_guard_allows_public_addresses_their_6to4_and_nat64_forms_and_allow_listed_ones(
    allowed: str, address: str
) -> None:
    EgressGuard(parse_networks(allowed)).check_address("h", ipaddress.ip_address(address))
