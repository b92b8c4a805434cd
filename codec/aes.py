"""The payload codec: each payload is serialized and sealed with AES-256-GCM.

An encrypted payload has the metadata `encoding: binary/encrypted` and
`encryption-key-id: <id>` (Temporal's sample convention, which codec servers and tools
recognise), and the data `nonce (12 bytes) || ciphertext || tag`. The key id is also the
associated data: a payload whose id was rewritten does not decrypt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from codec.keys import Keyring

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload that cannot be decrypted; the message says why, never what it holds."""


class EncryptionCodec(PayloadCodec):
    """Encrypts with the keyring's current key, decrypts with any of its keys."""

    def __init__(self, keyring: Keyring) -> None:
        super().__init__()
        self._keyring = keyring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keyring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._keyring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        """The original payload; one that is not encrypted (written before the codec was
        turned on) is returned as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(self._keyring.key_ids)
            raise CodecError(
                f"payload encrypted with the key id {key_id!r}, which is not among the codec "
                f"keys ({known}): add that key to CONTRACTING_CODEC_KEYS (after the current one)"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            clear = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise CodecError(
                f"payload encrypted with the key id {key_id!r} does not decrypt: it was altered "
                "or the key under that id is not the one it was encrypted with"
            ) from None
        return Payload.FromString(clear)
