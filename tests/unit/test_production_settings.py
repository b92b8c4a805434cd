"""`CONTRACTING_ENVIRONMENT=production` refuses what only a developer's machine may use, and
the codec keys are checked when the settings are read."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from settings import Settings

KEY = f"k1:{base64.b64encode(bytes(range(32))).decode()}"


def _production(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "production",
        "gateway_secret": "a-real-secret",
        "codec_keys": KEY,
    }
    values.update(overrides)
    return Settings(**values)


def test_production_starts_with_a_secret_and_a_codec_key() -> None:
    settings = _production()
    keyring = settings.codec_keyring()
    assert keyring is not None and keyring.current == "k1"


@pytest.mark.parametrize(
    ("overrides", "what_to_set"),
    [
        ({"gateway_secret": "dev-secret"}, "CONTRACTING_GATEWAY_SECRET is the development secret"),
        ({"gateway_extra_secrets": "x,dev-secret"}, "CONTRACTING_GATEWAY_EXTRA_SECRETS holds"),
        ({"dev_stack": True}, "CONTRACTING_DEV_STACK is set: unset it"),
        ({"codec_keys": None}, "no codec key: set CONTRACTING_CODEC_KEYS"),
    ],
)
def test_production_refuses_and_says_what_to_set(
    overrides: dict[str, Any], what_to_set: str
) -> None:
    with pytest.raises(ValidationError, match="CONTRACTING_ENVIRONMENT=production") as refused:
        _production(**overrides)
    assert what_to_set in str(refused.value)


def test_development_runs_without_a_codec_key(tmp_path: Path) -> None:
    assert Settings(gateway_secret="dev-secret", var_dir=tmp_path).codec_keyring() is None


def test_bad_key_material_stops_the_settings(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="is 3 bytes, AES-256 needs 32"):
        Settings(codec_keys="k1:YWJj")
    with pytest.raises(ValidationError, match="cannot be read"):
        Settings(codec_keys_file=tmp_path / "missing")
    with pytest.raises(ValidationError, match="keep one"):
        Settings(codec_keys=KEY, codec_keys_file=tmp_path / "missing")


def test_development_reads_the_key_contracting_dev_generated(tmp_path: Path) -> None:
    (tmp_path / "codec.keys").write_text(KEY + "\n")
    keyring = Settings(var_dir=tmp_path).codec_keyring()
    assert keyring is not None and keyring.key_ids == ("k1",)
    # Production never falls back on a file it was not given.
    with pytest.raises(ValidationError, match="no codec key"):
        _production(codec_keys=None, var_dir=tmp_path)
