"""Webhook senders' signatures, checked against the providers' documented examples where they publish one.

The Standard Webhooks specification, GitHub ("Validating webhook deliveries") and Slack ("Verifying
requests from Slack") publish a secret, a payload and the signature they expect; they are used as is.
Stripe ("Verify webhook signatures manually") and Shopify ("Verify a webhook") publish the algorithm but
no fixed example: their vectors below were computed once from that algorithm with an independent tool
(``openssl dgst -sha256 -hmac``: HMAC-SHA256 of ``<t>.<body>`` in hex for Stripe, of the body in base64
for Shopify) and are pinned as constants, so the check is not the code under test agreeing with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest

from services.gateway.hooks import senders
from services.gateway.hooks.senders import HmacOptions
from services.gateway.hooks.signature import SignatureError, secret_key, verify

GITHUB_SECRET = b"It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SLACK_SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIG"
    b"lgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

# Computed from Stripe's documented algorithm (no fixed example is published); see the module docstring.
STRIPE_SECRET = b"whsec_test"
STRIPE_TIMESTAMP = 1_700_000_000
STRIPE_BODY = b'{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.succeeded"}'
STRIPE_V1 = "edec45893bf710180a3af0df7ea5b46f56e056a2d70879d48a39f4f7c4580e6a"

# Computed from Shopify's documented algorithm (no fixed example is published); see the module docstring.
SHOPIFY_SECRET = b"shpss_secret"
SHOPIFY_BODY = b'{"id":820982911946154508,"email":"jon@example.com"}'
SHOPIFY_HMAC = "vo+n5h/cLxNKGlgJ0Fd1aDzU0aOaajK8Hs9m0hPqWiQ="

OTHER = b"another secret"


def refused(check: Callable[..., object], *args: Any, match: str | None = None, **kwargs: Any) -> None:
    """``check(*args, **kwargs)`` raises a :class:`SignatureError` (its message matching ``match`` when given)."""
    with pytest.raises(SignatureError, match=match):
        check(*args, **kwargs)


# The Standard Webhooks specification's example (the default scheme, services/gateway/hooks/signature.py).
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TIMESTAMP = "1614265330"
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_documented_example() -> None:
    key = secret_key(STANDARD_SECRET)
    now = float(STANDARD_TIMESTAMP) + 10
    args = (STANDARD_ID, STANDARD_TIMESTAMP, STANDARD_SIGNATURE, STANDARD_BODY)
    verify((OTHER, key), *args, now=now, tolerance=300)
    # Several signatures in the header (a sender mid-rotation): one matching is enough.
    verify(
        (key,), STANDARD_ID, STANDARD_TIMESTAMP, "v1,AAAA " + STANDARD_SIGNATURE, STANDARD_BODY, now=now, tolerance=300
    )
    refused(verify, (key,), *args, now=now + 600, tolerance=300, match="tolerance")
    refused(verify, (OTHER,), *args, now=now, tolerance=300, match="no signature matches")
    refused(verify, (key,), "msg_other", *args[1:], now=now, tolerance=300, match="no signature matches")


def test_github_documented_example() -> None:
    headers = {"X-Hub-Signature-256": GITHUB_SIGNATURE, "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"}
    assert senders.github(headers, GITHUB_BODY, (OTHER, GITHUB_SECRET)) == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    for bad in (
        {**headers, "X-Hub-Signature-256": GITHUB_SIGNATURE[:-1] + "0"},
        {**headers, "X-Hub-Signature-256": GITHUB_SIGNATURE.replace("sha256", "sha1")},
        {"X-GitHub-Delivery": "x"},
    ):
        refused(senders.github, bad, GITHUB_BODY, (GITHUB_SECRET,))
    refused(senders.github, headers, GITHUB_BODY + b" ", (GITHUB_SECRET,))


def test_slack_documented_example_and_its_timestamp() -> None:
    headers = {"X-Slack-Signature": SLACK_SIGNATURE, "X-Slack-Request-Timestamp": SLACK_TIMESTAMP}
    now = float(SLACK_TIMESTAMP) + 10
    assert senders.slack(headers, SLACK_BODY, (SLACK_SECRET,), now=now, tolerance=300) is None
    refused(senders.slack, headers, SLACK_BODY, (SLACK_SECRET,), now=now + 600, tolerance=300, match="tolerance")
    refused(senders.slack, headers, SLACK_BODY, (OTHER,), now=now, tolerance=300, match="does not match")
    # The Events API's event_id is the delivery id (Slack's retries carry the same one).
    body = b'{"type":"event_callback","event_id":"Ev0PV52K21"}'
    mac = hmac.new(SLACK_SECRET, b"v0:" + SLACK_TIMESTAMP.encode() + b":" + body, hashlib.sha256).hexdigest()
    signed = {"X-Slack-Signature": "v0=" + mac, "X-Slack-Request-Timestamp": SLACK_TIMESTAMP}
    assert senders.slack(signed, body, (SLACK_SECRET,), now=now, tolerance=300) == "Ev0PV52K21"


def _stripe_header(secret: bytes, t: int, body: bytes) -> str:
    return f"t={t},v1={hmac.new(secret, f'{t}.'.encode() + body, hashlib.sha256).hexdigest()},v0=ignored"


def test_stripe_pinned_vector_its_tolerance_and_event_id() -> None:
    t, body = STRIPE_TIMESTAMP, STRIPE_BODY
    header = {"Stripe-Signature": f"t={t},v1={STRIPE_V1},v0=ignored"}
    assert _stripe_header(STRIPE_SECRET, t, body) == header["Stripe-Signature"]
    found = senders.stripe(header, body, (OTHER, STRIPE_SECRET), now=t + 1, tolerance=300)
    assert found == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    assert senders.stripe(header, body, (STRIPE_SECRET,), now=t + 5, tolerance=300) == "evt_1NG8Du2eZvKYlo2CUI79vXWy"
    refused(senders.stripe, header, body, (STRIPE_SECRET,), now=t + 301, tolerance=300, match="tolerance")
    refused(senders.stripe, header, body, (OTHER,), now=t + 1, tolerance=300, match="matches")
    failed = body.replace(b"succeeded", b"failed")
    refused(senders.stripe, header, failed, (STRIPE_SECRET,), now=t, tolerance=300, match="matches")
    # The timestamp is part of what is signed: the same v1 under another t does not match.
    moved = {"Stripe-Signature": f"t={t + 1},v1={STRIPE_V1}"}
    refused(senders.stripe, moved, body, (STRIPE_SECRET,), now=t + 1, tolerance=300, match="matches")
    # Several v1 signatures (Stripe sends one per active secret while a secret rolls): any may match.
    two = {"Stripe-Signature": f"t={t},v1={'00' * 32},v1=" + header["Stripe-Signature"].split("v1=")[1]}
    assert senders.stripe(two, body, (STRIPE_SECRET,), now=t, tolerance=300)


def test_shopify_pinned_vector_base64_signature_and_webhook_id() -> None:
    mac = base64.b64encode(hmac.new(SHOPIFY_SECRET, SHOPIFY_BODY, hashlib.sha256).digest()).decode()
    assert mac == SHOPIFY_HMAC
    headers = {"X-Shopify-Hmac-Sha256": SHOPIFY_HMAC, "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}
    assert senders.shopify(headers, SHOPIFY_BODY, (OTHER, SHOPIFY_SECRET)) == "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    refused(senders.shopify, headers, SHOPIFY_BODY + b" ", (SHOPIFY_SECRET,), match="does not match")
    refused(senders.shopify, headers, SHOPIFY_BODY, (OTHER,))
    # The hex of the same MAC is not Shopify's encoding, and a value that is not base64 is no signature.
    for value in (base64.b64decode(SHOPIFY_HMAC).hex(), "not base64!"):
        refused(senders.shopify, {**headers, "X-Shopify-Hmac-Sha256": value}, SHOPIFY_BODY, (SHOPIFY_SECRET,))


@pytest.mark.parametrize(
    ("options", "render"),
    [
        (HmacOptions(), lambda mac: mac.hex()),
        (HmacOptions(header="X-Sig", encoding="base64"), lambda mac: base64.b64encode(mac).decode()),
        (HmacOptions(header="X-Sig", prefix="sha256="), lambda mac: "sha256=" + mac.hex()),
    ],
)
def test_generic_hmac_sha256(options: HmacOptions, render) -> None:
    body = b'{"n":1}'
    value = render(hmac.new(b"k", body, hashlib.sha256).digest())
    senders.hmac_sha256({options.header: value}, body, (b"k",), options)
    refused(senders.hmac_sha256, {options.header: value}, body, (b"other",), options)
    refused(senders.hmac_sha256, {}, body, (b"k",), options, match="missing")


def test_slack_url_verification_challenge_and_body_key() -> None:
    assert senders.slack_challenge(b'{"type":"url_verification","challenge":"3eZbrw1aB"}') == "3eZbrw1aB"
    assert senders.slack_challenge(b'{"type":"event_callback"}') is None
    assert senders.slack_challenge(b"not json") is None
    assert senders.body_key(b"a") == senders.body_key(b"a") != senders.body_key(b"b")
