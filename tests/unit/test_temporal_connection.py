"""How every process reaches Temporal (activities/temporal_client.py): Temporal's own
TEMPORAL_* variables and profiles, the settings' address as the fallback, mTLS complete or
refused at start, the codec in every client's converter."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesResponse
from temporalio.service import TLSConfig

from activities.temporal_client import (
    SearchAttributeConflict,
    TemporalConfigError,
    connect_options,
    ensure_search_attributes,
    temporal_target,
)
from codec.aes import EncryptionCodec
from schemas.search_attributes import ALL_KEYS
from settings import Settings

SETTINGS = Settings(
    temporal_address="127.0.0.1:7299",
    temporal_namespace="dev-ns",
    var_dir=Path("/nonexistent/var"),  # never a dev stack's codec key of this checkout
)


def test_the_settings_address_applies_when_temporal_gives_none() -> None:
    target = temporal_target(SETTINGS, {})
    assert (target.address, target.namespace, target.tls, target.api_key) == (
        "127.0.0.1:7299",
        "dev-ns",
        False,
        None,
    )


def test_temporal_variables_win_over_the_settings() -> None:
    target = temporal_target(
        SETTINGS, {"TEMPORAL_ADDRESS": "acme.tmprl.cloud:7233", "TEMPORAL_NAMESPACE": "acme.prod"}
    )
    assert (target.address, target.namespace) == ("acme.tmprl.cloud:7233", "acme.prod")


def test_an_api_key_goes_over_tls() -> None:
    target = temporal_target(SETTINGS, {"TEMPORAL_API_KEY": "key"})
    assert target.api_key == "key" and target.tls is True
    assert "API key" in target.describe() and "key" not in target.describe().replace("API key", "")


def test_a_profile_gives_mtls_with_its_ca_and_server_name(tmp_path: Path) -> None:
    for name in ("client.pem", "client.key", "ca.pem"):
        (tmp_path / name).write_bytes(f"--{name}--".encode())
    profile = tmp_path / "temporal.toml"
    profile.write_text(
        '[profile.prod]\naddress = "temporal.internal:7233"\nnamespace = "contracting"\n'
        "[profile.prod.tls]\n"
        f'client_cert_path = "{tmp_path / "client.pem"}"\n'
        f'client_key_path = "{tmp_path / "client.key"}"\n'
        f'server_ca_cert_path = "{tmp_path / "ca.pem"}"\n'
        'server_name = "temporal.acme"\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(profile), "TEMPORAL_PROFILE": "prod"}
    target = temporal_target(SETTINGS, env)
    assert (target.address, target.namespace) == ("temporal.internal:7233", "contracting")
    assert isinstance(target.tls, TLSConfig)
    assert target.tls.client_cert == b"--client.pem--"
    assert target.tls.client_private_key == b"--client.key--"
    assert target.tls.server_root_ca_cert == b"--ca.pem--"
    assert target.tls.domain == "temporal.acme"
    # A variable overrides its profile's entry.
    overridden = temporal_target(SETTINGS, {**env, "TEMPORAL_NAMESPACE": "other"})
    assert overridden.namespace == "other" and overridden.address == "temporal.internal:7233"


@pytest.mark.parametrize(
    ("variable", "given", "missing"),
    [
        ("TEMPORAL_TLS_CLIENT_CERT_PATH", "certificate", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
        ("TEMPORAL_TLS_CLIENT_KEY_PATH", "key", "TEMPORAL_TLS_CLIENT_CERT_PATH"),
    ],
)
def test_half_an_mtls_pair_is_an_error_naming_both_variables(
    tmp_path: Path, variable: str, given: str, missing: str
) -> None:
    (tmp_path / "half.pem").write_text("--")
    with pytest.raises(TemporalConfigError) as refused:
        temporal_target(SETTINGS, {variable: str(tmp_path / "half.pem")})
    message = str(refused.value)
    assert f"a TLS client {given} is configured" in message
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH" in message and "TEMPORAL_TLS_CLIENT_KEY_PATH" in message
    assert "without its" in message and missing in message


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"CONTRACTING_TEMPORAL_API_KEY": "k"}, "set TEMPORAL_API_KEY instead"),
        ({"CONTRACTING_TEMPORAL_TLS_CERT": "/c"}, "set TEMPORAL_TLS_CLIENT_CERT_PATH instead"),
        ({"TEMPORAL_CONFIG_FILE": "/nonexistent/temporal.toml"}, "does not exist"),
        ({"TEMPORAL_PROFILE": "nope"}, "Profile 'nope' not found"),
        ({"TEMPORAL_TLS_SERVER_CA_CERT_PATH": "/nonexistent/ca.pem"}, "cannot be read"),
    ],
)
def test_a_wrong_connection_is_refused_at_start(env: dict[str, str], problem: str) -> None:
    with pytest.raises(TemporalConfigError, match=problem):
        temporal_target(SETTINGS, env)


def test_every_client_gets_the_codec_when_keys_are_set() -> None:
    key = f"k1:{base64.b64encode(bytes(32)).decode()}"
    options = connect_options(Settings(codec_keys=key, var_dir=SETTINGS.var_dir), {})
    assert isinstance(options["data_converter"].payload_codec, EncryptionCodec)
    assert connect_options(SETTINGS, {})["data_converter"].payload_codec is None


class _Operator:
    """The operator service of a namespace whose attributes are `registered` (name → type)."""

    def __init__(self, registered: dict[str, IndexedValueType.ValueType]) -> None:
        self.registered = registered
        self.added: dict[str, IndexedValueType.ValueType] = {}

    async def list_search_attributes(self, request: Any) -> Any:
        return ListSearchAttributesResponse(custom_attributes=self.registered)

    async def add_search_attributes(self, request: Any) -> None:
        self.added.update(request.search_attributes)


class _Client:
    namespace = "contracting"

    def __init__(self, operator: _Operator) -> None:
        self.operator_service = operator


async def test_search_attributes_are_added_once_and_a_conflict_is_refused() -> None:
    operator = _Operator({"MissionId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD})
    added = await ensure_search_attributes(_Client(operator))  # type: ignore[arg-type]
    assert "MissionId" not in added and set(added) == set(operator.added)
    assert set(added) | {"MissionId"} == {key.name for key in ALL_KEYS}
    again = _Operator({**operator.registered, **operator.added})
    assert await ensure_search_attributes(_Client(again)) == []  # type: ignore[arg-type]
    assert again.added == {}
    wrong = _Operator({"NextPayoutDate": IndexedValueType.INDEXED_VALUE_TYPE_TEXT})
    with pytest.raises(SearchAttributeConflict, match="NextPayoutDate is registered as Text but"):
        await ensure_search_attributes(_Client(wrong))  # type: ignore[arg-type]
    assert wrong.added == {}  # nothing registered beside a conflict
