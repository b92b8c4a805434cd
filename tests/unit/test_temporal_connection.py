"""How every process reaches Temporal (activities/temporal_client.py): Temporal's own
TEMPORAL_* variables and profiles, the settings' address as the fallback, mTLS complete or
refused at start, the codec in every client's converter."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from activities.temporal_client import TemporalConfigError, connect_options, temporal_target
from codec.aes import EncryptionCodec
from settings import Settings

SETTINGS = Settings(temporal_address="127.0.0.1:7299", temporal_namespace="dev-ns")


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
    options = connect_options(Settings(codec_keys=key), {})
    assert isinstance(options["data_converter"].payload_codec, EncryptionCodec)
    assert connect_options(SETTINGS, {})["data_converter"].payload_codec is None
