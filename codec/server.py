"""`contracting codec-server`: Temporal's remote codec protocol over the codec keys, so that
ops read decoded payloads in the Temporal UI and with `temporal workflow show`.

`POST /encode` and `POST /decode` (also under `/{namespace}/`, for endpoint templating) take
and return `{"payloads": [...]}` in protobuf JSON (bytes in base64). Every call needs
`Authorization: Bearer <CONTRACTING_CODEC_SERVER_TOKEN>`: a decoded history holds providers'
names, e-mails and amounts. CORS lets the Temporal UI's origin call it from the browser.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

from fastapi import FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from codec.aes import CodecError, EncryptionCodec
from settings import Settings, is_loopback

log = logging.getLogger("contracting.codec_server")

Transform = Callable[[Sequence[Payload]], Awaitable[list[Payload]]]


class CodecServerConfigError(RuntimeError):
    """The codec server cannot start; the message says what to set."""


def cors_origins(settings: Settings) -> list[str]:
    return [
        o.strip().rstrip("/") for o in settings.codec_server_cors_origins.split(",") if o.strip()
    ]


def create_codec_app(settings: Settings) -> FastAPI:
    """The codec server's app; refuses to exist without keys or without a token."""
    keyring = settings.codec_keyring()
    if keyring is None:
        raise CodecServerConfigError(
            "no codec key: set CONTRACTING_CODEC_KEYS or CONTRACTING_CODEC_KEYS_FILE (the same "
            "keys as the worker and the gateway)"
        )
    token = (
        settings.codec_server_token.get_secret_value().strip()
        if settings.codec_server_token
        else ""
    )
    # The dev stack's UI has no login and cannot send a token: on a dev stack bound to
    # loopback (never in production, which refuses CONTRACTING_DEV_STACK) a call without
    # one is answered, as its key is in var/ for anyone on this machine anyway.
    tokenless = settings.dev_stack and is_loopback(settings.codec_server_host)
    if not token and not tokenless:
        raise CodecServerConfigError(
            "CONTRACTING_CODEC_SERVER_TOKEN is not set: the codec server decrypts personal "
            "data and refuses to run without a token (callers send Authorization: Bearer <it>)"
        )
    expected = f"Bearer {token}".encode()
    codec = EncryptionCodec(keyring)
    app = FastAPI(
        title="contracting codec server",
        description="Temporal remote codec: /encode and /decode (Authorization: Bearer).",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins(settings),
        allow_methods=["POST"],
        allow_headers=["authorization", "content-type", "x-namespace"],
        allow_credentials=True,
    )

    async def apply(request: Request, transform: Transform) -> Response:
        given = request.headers.get("authorization", "").strip().encode()
        answered = hmac.compare_digest(given, expected) if token else tokenless
        if not answered:
            return _error(401, "missing or wrong Authorization: Bearer token", auth=True)
        try:
            payloads = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError as error:
            return _error(400, f'the body is not {{"payloads": [...]}} in protobuf JSON: {error}')
        try:
            transformed = await transform(payloads.payloads)
        except CodecError as error:
            log.warning(
                "codec server refused a payload (namespace %s): %s",
                request.headers.get("x-namespace"),
                error,
            )
            return _error(422, str(error))
        body = json_format.MessageToJson(Payloads(payloads=transformed))
        return Response(body, media_type="application/json")

    async def encode(request: Request) -> Response:
        return await apply(request, codec.encode)

    async def decode(request: Request) -> Response:
        return await apply(request, codec.decode)

    for prefix in ("", "/{namespace}"):
        app.add_api_route(f"{prefix}/encode", encode, methods=["POST"], include_in_schema=False)
        app.add_api_route(f"{prefix}/decode", decode, methods=["POST"], include_in_schema=False)
    return app


def _error(status: int, message: str, *, auth: bool = False) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if auth else None
    return Response(
        json.dumps({"error": message}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
