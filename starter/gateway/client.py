"""Python client of the gateway: signs and posts events exactly as the platform does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

from starter.gateway.signing import signed_headers


@dataclass(frozen=True)
class GatewayResponse:
    status_code: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status_code in (200, 202)


class GatewayClient:
    """`POST /events` with the HMAC signature, and the read routes with a bearer token
    (`read_token`, a token of CONTRACTING_READ_TOKENS); one client per process, reuse it."""

    def __init__(
        self, base_url: str, secret: str, *, read_token: str | None = None, timeout: float = 30.0
    ) -> None:
        self._secret = secret
        headers = {"Authorization": f"Bearer {read_token}"} if read_token else {}
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers)

    async def send(self, event: dict[str, Any]) -> GatewayResponse:
        body = json.dumps(event, separators=(",", ":"), default=str).encode()
        return await self.send_raw(body)

    async def send_raw(self, body: bytes) -> GatewayResponse:
        response = await self._http.post(
            "/events",
            content=body,
            headers={**signed_headers(body, self._secret), "Content-Type": "application/json"},
        )
        return GatewayResponse(response.status_code, response.json())

    async def get_mission(self, mission_id: str) -> GatewayResponse:
        """`GET /missions/{id}`: the mission from the ledger, live state added (a MissionView)."""
        response = await self._http.get(f"/missions/{mission_id}")
        return GatewayResponse(response.status_code, response.json())

    async def get_documents(self, mission_id: str) -> GatewayResponse:
        """`GET /missions/{id}/documents`: the mission's issued BPFs, invoices, credit notes."""
        response = await self._http.get(f"/missions/{mission_id}/documents")
        return GatewayResponse(response.status_code, response.json())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
