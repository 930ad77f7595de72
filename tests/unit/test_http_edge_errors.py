"""The shared HTTP edge: values a body may not carry, what counts as "unavailable", PubAck error classes."""

from __future__ import annotations

import math
from typing import Any

import asyncpg
import pytest

from deploy.local.infra import free_port
from libs.common.bus import BusUnavailable, MessageRejected, PublishRejected, StreamFull
from libs.common.bus.errors import rejection
from libs.common.http.json_values import INT64_MAX, INT64_MIN, uncarriable_values
from libs.common.http.unavailable import DATABASE_UNAVAILABLE, SERVICE_UNAVAILABLE, unavailable_code


def fields(document: Any) -> list[tuple[str, str]]:
    return [(p["field"], p["type"]) for p in uncarriable_values(document)]


def test_64_bit_bounds_are_inclusive():
    assert fields({"a": INT64_MAX, "b": INT64_MIN, "c": [0, -1, True, 1.5, "x", None]}) == []
    assert fields({"a": INT64_MAX + 1, "b": INT64_MIN - 1}) == [("a", "int_out_of_range"), ("b", "int_out_of_range")]


def test_paths_name_the_field_like_pydantic_details():
    document = {
        "payload": {"items": [{"id": 1}, {"id": 2**64}], "ok": 2},
        "workflow": {"action": {"config": {"body": {"n": -(2**70)}}}},
    }
    assert fields(document) == [
        ("payload.items.1.id", "int_out_of_range"),
        ("workflow.action.config.body.n", "int_out_of_range"),
    ]
    assert fields(2**63) == [("body", "int_out_of_range")]
    assert fields([1, [2, [2**100]]]) == [("1.1.0", "int_out_of_range")]


def test_non_finite_numbers_and_unstorable_strings_are_reported_too():
    assert fields({"x": math.inf, "y": -math.inf, "z": math.nan}) == [
        ("x", "float_not_finite"),
        ("y", "float_not_finite"),
        ("z", "float_not_finite"),
    ]
    # An exponent does not escape the 64-bit range (JSON Schema reads 1e19 as an integer too).
    assert fields({"f": 1e19, "g": -1.7e308, "h": 1.5e18, "i": -0.5}) == [
        ("f", "number_out_of_range"),
        ("g", "number_out_of_range"),
    ]
    assert fields({"a": "nul\x00", "b": ["\ud800"], "c": "r\u00e9sum\u00e9 \U0001f680"}) == [
        ("a", "string_unstorable"),
        ("b.0", "string_unstorable"),
    ]
    # A bad key is reported at its object, and the key itself is never echoed.
    assert fields({"o": {"k\x00": 1}}) == [("o", "string_unstorable")]


def test_reports_are_bounded_and_deep_documents_do_not_exhaust_the_stack():
    assert len(uncarriable_values([2**64] * 1000)) == 20
    deep: Any = 2**64
    for _ in range(50_000):
        deep = [deep]
    assert len(fields(deep)[0][0].split(".")) == 50_000


async def test_postgres_away_is_database_unavailable_other_io_is_service_unavailable():
    with pytest.raises(OSError) as refused:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/none", timeout=5)
    assert unavailable_code(refused.value) == DATABASE_UNAVAILABLE
    for exc in (
        asyncpg.ConnectionDoesNotExistError("closed"),
        asyncpg.CannotConnectNowError("starting"),
        asyncpg.AdminShutdownError("shutdown"),
        asyncpg.CrashShutdownError("crash"),
        asyncpg.TooManyConnectionsError("full"),
        asyncpg.InterfaceError("connection is closed"),
    ):
        assert unavailable_code(exc) == DATABASE_UNAVAILABLE, exc
    assert unavailable_code(ConnectionRefusedError("elsewhere")) == SERVICE_UNAVAILABLE
    assert unavailable_code(TimeoutError()) == SERVICE_UNAVAILABLE
    # A bad argument or a bug is not an outage: it stays a 500.
    for exc in (
        asyncpg.DataError("invalid input for query argument"),
        asyncpg.UniqueViolationError("dup"),
        ValueError("bug"),
        KeyError("k"),
    ):
        assert unavailable_code(exc) is None, exc


def test_puback_errors_map_onto_bus_unavailable_subclasses():
    full = rejection("events.t.w", {"code": 503, "err_code": 10077, "description": "maximum bytes exceeded"})
    assert type(full) is StreamFull and full.err_code == 10077
    too_big = rejection(
        "events.t.w", {"code": 400, "err_code": 10054, "description": "message size exceeds maximum allowed"}
    )
    assert type(too_big) is MessageRejected and too_big.status == 400
    other = rejection("events.t.w", {"code": 500, "err_code": 10999, "description": "new"})
    assert type(other) is PublishRejected
    odd = rejection("events.t.w", "not an object")
    assert type(odd) is PublishRejected and (odd.status, odd.err_code) == (0, 0)
    for exc in (full, too_big, other, odd):
        assert isinstance(exc, BusUnavailable)  # every publish site's "503, retry later" catches them all
