"""The gateway's read routes are never anonymous (issue 13 point 3): bearer tokens with roles,
401 / 403, bounded explain, a rate limit per token. Over ASGI with a stand-in processor whose
ledger is out of reach: a request that passes the checks is answered 503 by the ledger read,
so no database is needed to see who gets through."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx
import pytest

from settings import Settings
from starter.gateway.api import create_app
from starter.gateway.processor import EventProcessor
from starter.gateway.read_access import ReadTokens, ReadTokensInvalid, TokenBucket
from tests.support.gateway import (
    TEST_OPS_TOKEN,
    TEST_READ_TOKENS,
    TEST_SUPPORT_TOKEN,
    read_headers,
)

ROUTES = [
    "/missions/M-1",
    "/missions/M-1/explain",
    "/missions/M-1/documents",
    "/missions/M-1/documents/F-1.pdf",
]


class LedgerDown:
    """Stands for the EventProcessor: no Temporal, and a ledger that refuses connections."""

    temporal = None

    def sessions(self) -> Any:
        raise OSError("connection refused (test)")


@asynccontextmanager
async def gateway(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(gateway_secret="s", **settings), processor=cast(EventProcessor, LedgerDown())
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


@pytest.mark.parametrize("route", ROUTES)
async def test_without_a_configured_token_the_read_routes_are_off(route: str) -> None:
    async with gateway() as http:
        response = await http.get(route, headers=read_headers())
    assert response.status_code == 403
    assert "disabled" in response.json()["detail"]
    assert "CONTRACTING_READ_TOKENS" in response.json()["detail"]


@pytest.mark.parametrize("route", ROUTES)
async def test_no_token_or_a_wrong_one_is_a_401_and_each_role_gets_through(route: str) -> None:
    async with gateway(read_tokens=TEST_READ_TOKENS) as http:
        anonymous = await http.get(route)
        wrong = await http.get(route, headers=read_headers(TEST_OPS_TOKEN[:-1] + "x"))
        basic = await http.get(route, headers={"Authorization": f"Basic {TEST_OPS_TOKEN}"})
        support = await http.get(route, headers=read_headers(TEST_SUPPORT_TOKEN))
        ops = await http.get(route, headers=read_headers(TEST_OPS_TOKEN))
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "bearer token is required" in anonymous.json()["detail"]
    assert wrong.status_code == 401 and "not one of" in wrong.json()["detail"]
    assert basic.status_code == 401
    # Through the checks: the ledger read answers (503: PostgreSQL out of reach here).
    assert support.status_code == 503 and ops.status_code == 503, support.text
    assert "PostgreSQL" in support.json()["detail"]


async def test_explain_is_one_month_for_support_and_a_bounded_range_for_ops() -> None:
    async with gateway(read_tokens=TEST_READ_TOKENS, read_explain_max_months=3) as http:
        support = read_headers(TEST_SUPPORT_TOKEN)
        one_month = await http.get("/missions/M-1/explain?month=2024-02", headers=support)
        range_for_support = await http.get(
            "/missions/M-1/explain?from=2024-01&to=2024-02", headers=support
        )
        ops = read_headers(TEST_OPS_TOKEN)
        within = await http.get("/missions/M-1/explain?from=2024-11&to=2025-01", headers=ops)
        too_long = await http.get("/missions/M-1/explain?from=2024-01&to=2024-04", headers=ops)
        backwards = await http.get("/missions/M-1/explain?from=2024-04&to=2024-01", headers=ops)
        half = await http.get("/missions/M-1/explain?from=2024-01", headers=ops)
        mixed = await http.get(
            "/missions/M-1/explain?month=2024-01&from=2024-01&to=2024-02", headers=ops
        )
    assert one_month.status_code == 503
    assert range_for_support.status_code == 403
    assert "needs the ops role" in range_for_support.json()["detail"]
    assert within.status_code == 503
    assert too_long.status_code == 422 and "1 to 3 months" in too_long.json()["detail"]
    assert backwards.status_code == 422
    assert half.status_code == 422 and mixed.status_code == 422


async def test_explain_past_the_rate_of_a_token_is_a_429_with_retry_after() -> None:
    async with gateway(
        read_tokens=TEST_READ_TOKENS, read_explain_per_minute=6, read_explain_burst=2
    ) as http:
        ops = read_headers(TEST_OPS_TOKEN)
        answers = [(await http.get("/missions/M-1/explain", headers=ops)) for _ in range(3)]
        other_token = await http.get(
            "/missions/M-1/explain", headers=read_headers(TEST_SUPPORT_TOKEN)
        )
        show = await http.get("/missions/M-1", headers=ops)
    assert [a.status_code for a in answers] == [503, 503, 429]
    assert answers[2].headers["Retry-After"] == "10"  # 6 a minute: one every 10 s
    assert "too many explain requests" in answers[2].json()["detail"]
    assert other_token.status_code == 503  # each token has its own bucket
    assert show.status_code == 503  # the limit is explain's


def test_read_tokens_name_what_is_wrong() -> None:
    assert not ReadTokens.parse(None).configured and not ReadTokens.parse(" , ").configured
    with pytest.raises(ReadTokensInvalid, match=r"entry 1 must be 'role:token'.*'admin'"):
        ReadTokens.parse("admin:" + "x" * 20)
    with pytest.raises(ReadTokensInvalid, match=r"entry 2 .*must be 'role:token'"):
        ReadTokens.parse(f"ops:{'x' * 20},{'y' * 20}")
    with pytest.raises(ReadTokensInvalid, match="at least 16 characters"):
        ReadTokens.parse("support:short")
    with pytest.raises(ReadTokensInvalid, match="already given"):
        ReadTokens.parse(f"ops:{'x' * 20},support:{'x' * 20}")
    tokens = ReadTokens.parse(TEST_READ_TOKENS)
    ops, support = tokens.reader(TEST_OPS_TOKEN), tokens.reader(TEST_SUPPORT_TOKEN)
    assert ops is not None and ops.role == "ops"
    assert support is not None and support.role == "support"
    assert ops.token_id != support.token_id and TEST_OPS_TOKEN not in ops.token_id
    assert tokens.reader(TEST_OPS_TOKEN + "x") is None and tokens.reader("") is None
    assert tokens.first("ops") == TEST_OPS_TOKEN


def test_a_malformed_token_setting_stops_the_gateway_at_start() -> None:
    with pytest.raises(RuntimeError, match="CONTRACTING_READ_TOKENS entry 1"):
        create_app(Settings(gateway_secret="s", read_tokens="ops:short"))


def test_a_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    bucket = TokenBucket(per_minute=30, burst=2, clock=lambda: now[0])
    assert bucket.take("a") is None and bucket.take("a") is None
    wait = bucket.take("a")
    assert wait == pytest.approx(2.0)
    now[0] += 1.0
    assert bucket.take("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert bucket.take("a") is None
    assert TokenBucket.retry_after(0.2) == "1"
