"""`contracting codec-server` (codec/server.py): Temporal's remote codec protocol, its token,
CORS for the Temporal UI, refusals at start."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from codec.aes import EncryptionCodec
from codec.keys import parse_keys
from codec.server import CodecServerConfigError, create_codec_app
from settings import Settings

KEYS = f"k1:{base64.b64encode(bytes(range(32))).decode()}"
TOKEN = "s3cret-token"
UI = "http://localhost:8233"
CLEAR = Payload(metadata={"encoding": b"json/plain"}, data=b'{"name": "Jeanne Dupont"}')


@pytest.fixture
async def codec_server() -> AsyncIterator[httpx.AsyncClient]:
    app = create_codec_app(Settings(codec_keys=KEYS, codec_server_token=TOKEN))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        yield http


def _body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=list(payloads)))


async def test_decode_and_encode_with_the_token(codec_server: httpx.AsyncClient) -> None:
    [sealed] = await EncryptionCodec(parse_keys(KEYS, "test")).encode([CLEAR])
    auth = {"Authorization": f"Bearer {TOKEN}", "X-Namespace": "default"}
    decoded = await codec_server.post("/decode", content=_body(sealed), headers=auth)
    assert decoded.status_code == 200, decoded.text
    assert json_format.Parse(decoded.text, Payloads()).payloads == [CLEAR]
    # The protocol's JSON: bytes in base64.
    assert decoded.json()["payloads"][0]["metadata"]["encoding"] == "anNvbi9wbGFpbg=="
    encoded = await codec_server.post("/default/encode", content=_body(CLEAR), headers=auth)
    [again] = json_format.Parse(encoded.text, Payloads()).payloads
    assert again.metadata["encoding"] == b"binary/encrypted"
    assert b"Jeanne" not in again.data


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", TOKEN])
async def test_no_payload_without_the_token(
    codec_server: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    refused = await codec_server.post("/decode", content=_body(CLEAR), headers=headers)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"


async def test_an_unknown_key_and_a_bad_body_are_explained(
    codec_server: httpx.AsyncClient,
) -> None:
    other = f"k9:{base64.b64encode(bytes(32)).decode()}"
    [sealed] = await EncryptionCodec(parse_keys(other, "test")).encode([CLEAR])
    auth = {"Authorization": f"Bearer {TOKEN}"}
    unknown = await codec_server.post("/decode", content=_body(sealed), headers=auth)
    assert unknown.status_code == 422 and "'k9'" in unknown.json()["error"]
    bad = await codec_server.post("/decode", content=b"[1, 2]", headers=auth)
    assert bad.status_code == 400


async def test_the_temporal_ui_origin_may_call_it(codec_server: httpx.AsyncClient) -> None:
    preflight = await codec_server.options(
        "/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == UI
    assert preflight.headers["access-control-allow-credentials"] == "true"
    elsewhere = await codec_server.options(
        "/decode",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in elsewhere.headers


def test_it_refuses_to_start_without_keys_or_token() -> None:
    with pytest.raises(CodecServerConfigError, match="no codec key"):
        create_codec_app(Settings(codec_server_token=TOKEN))
    with pytest.raises(CodecServerConfigError, match="CONTRACTING_CODEC_SERVER_TOKEN is not set"):
        create_codec_app(Settings(codec_keys=KEYS))


async def test_the_dev_stack_ui_needs_no_token_on_loopback_only() -> None:
    settings = Settings(codec_keys=KEYS, dev_stack=True)
    app = create_codec_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://codec") as http:
        assert (await http.post("/decode", content=_body(CLEAR))).status_code == 200
    with pytest.raises(CodecServerConfigError, match="TOKEN is not set"):
        create_codec_app(settings.model_copy(update={"codec_server_host": "0.0.0.0"}))
