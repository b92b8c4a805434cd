"""The payload codec (codec/): AES-GCM round trip, rotation, unknown and tampered payloads,
key material refused at start."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from pydantic import BaseModel
from temporalio.api.common.v1 import Payload

from codec.aes import KEY_ID, CodecError, EncryptionCodec
from codec.converter import build_data_converter
from codec.keys import CodecKeyError, ensure_key_file, new_key_line, parse_keys

NAME = "Jeanne Dupont"


class Provider(BaseModel):
    name: str
    email: str


def _key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


async def test_a_payload_round_trips_encrypted_through_the_converter() -> None:
    converter = build_data_converter(parse_keys(_key("k1"), "test"))
    provider = Provider(name=NAME, email="jeanne@example.org")
    [payload] = await converter.encode([provider])
    assert payload.metadata["encoding"] == b"binary/encrypted"
    assert payload.metadata[KEY_ID] == b"k1"
    assert NAME.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [Provider]) == [provider]


async def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = _key("2025"), _key("2026")
    before = EncryptionCodec(parse_keys(old, "test"))
    after = EncryptionCodec(parse_keys(f"{new},{old}", "test"))
    clear = Payload(metadata={"encoding": b"json/plain"}, data=b'"' + NAME.encode() + b'"')
    [written_before] = await before.encode([clear])
    [written_after] = await after.encode([clear])
    assert written_after.metadata[KEY_ID] == b"2026"
    assert await after.decode([written_before, written_after]) == [clear, clear]
    # A payload written before the codec was turned on is read as it is.
    assert await after.decode([clear]) == [clear]


async def test_an_unknown_key_id_is_named() -> None:
    [payload] = await EncryptionCodec(parse_keys(_key("gone"), "test")).encode([Payload(data=b"x")])
    with pytest.raises(CodecError, match=r"key id 'gone'.*not among the codec keys \(k1\)"):
        await EncryptionCodec(parse_keys(_key("k1"), "test")).decode([payload])


async def test_a_tampered_payload_is_refused() -> None:
    codec = EncryptionCodec(parse_keys(f"{_key('a')},{_key('b')}", "test"))
    [payload] = await codec.encode([Payload(data=NAME.encode())])
    flipped = Payload()
    flipped.CopyFrom(payload)
    flipped.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    with pytest.raises(CodecError, match="was altered"):
        await codec.decode([flipped])
    relabelled = Payload()
    relabelled.CopyFrom(payload)
    relabelled.metadata[KEY_ID] = b"b"  # the key id is authenticated too
    with pytest.raises(CodecError, match="does not decrypt"):
        await codec.decode([relabelled])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "holds no key"),
        ("k1", "no ':' found"),
        ("k1:not base64!", "not valid base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "is 5 bytes, AES-256 needs 32"),
        (f"bad id:{base64.b64encode(bytes(32)).decode()}", "has the id 'bad id'"),
        (f"{_key('k1')},{_key('k1')}", "'k1' is listed twice"),
    ],
    # Named, not shown: the keys are random, and xdist's workers must collect the same ids.
    ids=["empty", "no-id", "not-base64", "short", "bad-id", "twice"],
)
def test_bad_key_material_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(CodecKeyError, match=problem) as refused:
        parse_keys(text, "CONTRACTING_CODEC_KEYS")
    assert str(refused.value).startswith("CONTRACTING_CODEC_KEYS")


def test_a_key_file_holds_comments_and_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# rotated in May\n{_key('new')}\n{_key('old')}  # until 2027\n")
    assert parse_keys(path.read_text(), "file").key_ids == ("new", "old")
    assert parse_keys(new_key_line("x1"), "line").current == "x1"


def test_the_dev_key_is_generated_once_private(tmp_path: Path) -> None:
    path = tmp_path / "var" / "codec.keys"
    first = ensure_key_file(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_key_file(path) == first  # reused by the next start
