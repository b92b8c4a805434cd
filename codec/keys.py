"""Codec keys: `keyid:base64-32-bytes,...`, the first encrypts, every one decrypts.

Read from `CONTRACTING_CODEC_KEYS` or the file `CONTRACTING_CODEC_KEYS_FILE` (same format, one
key per line or comma-separated, `#` comments). Bad material is refused when the settings are
read, so a process never starts with a key it could not use.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_BYTES = 32
"""AES-256."""

_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class CodecKeyError(ValueError):
    """Key material that cannot be used; the message says which and how to fix it."""


@dataclass(frozen=True)
class Keyring:
    """The codec keys by id, and the id of the one that encrypts (the first listed)."""

    current: str
    keys: dict[str, bytes]

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self.keys)


def parse_keys(text: str, source: str) -> Keyring:
    """The keyring written in `text` (`source` names where it came from, for errors)."""
    entries = [
        entry.strip()
        for line in text.splitlines()
        for entry in line.split("#", 1)[0].split(",")
        if entry.strip()
    ]
    if not entries:
        raise CodecKeyError(f"{source} holds no key: write keyid:base64-32-bytes (see README)")
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(entries, start=1):
        key_id, colon, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not colon:
            raise CodecKeyError(
                f"{source}: key #{number} is not keyid:base64-32-bytes (no ':' found)"
            )
        if not _KEY_ID.fullmatch(key_id):
            raise CodecKeyError(
                f"{source}: key #{number} has the id {key_id!r}; an id is 1 to 64 letters, "
                "digits, '.', '_' or '-', starting with a letter or a digit"
            )
        if key_id in keys:
            raise CodecKeyError(f"{source}: the key id {key_id!r} is listed twice")
        try:
            material = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise CodecKeyError(
                f"{source}: key {key_id!r} is not valid base64 (generate one with "
                "`contracting codec-key`)"
            ) from None
        if len(material) != KEY_BYTES:
            raise CodecKeyError(
                f"{source}: key {key_id!r} is {len(material)} bytes, AES-256 needs "
                f"{KEY_BYTES} (generate one with `contracting codec-key`)"
            )
        keys[key_id] = material
    return Keyring(current=next(iter(keys)), keys=keys)


def read_key_file(path: Path, source: str) -> Keyring:
    """The keyring in the file `path`."""
    try:
        text = path.read_text()
    except OSError as error:
        raise CodecKeyError(f"{source}={path} cannot be read: {error.strerror}") from None
    return parse_keys(text, f"{source} ({path})")


def new_key_line(key_id: str | None = None) -> str:
    """A fresh `keyid:base64` entry (random 32 bytes; the id defaults to a random one)."""
    key_id = key_id or f"k{secrets.token_hex(4)}"
    if not _KEY_ID.fullmatch(key_id):
        raise CodecKeyError(f"{key_id!r} is not a valid key id")
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def ensure_key_file(path: Path) -> Keyring:
    """The keyring in `path`, written first with one fresh key if the file does not exist
    (mode 0600: the dev stack's key, reused by every later run)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("# codec key of the dev stack (contracting dev): keep it with var/\n")
            file.write(new_key_line("dev1") + "\n")
    return read_key_file(path, "the dev stack's codec key file")
