"""One way to reach Temporal from every process (worker, gateway, CLI, codec tooling): where,
as whom and with which data converter.

Where and as whom come from Temporal's environment configuration (`temporalio.envconfig`),
shared with the `temporal` CLI and the other SDKs: the `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY` and `TEMPORAL_TLS_*` variables, over the profile `TEMPORAL_PROFILE` of the
TOML file `TEMPORAL_CONFIG_FILE` (default `~/.config/temporalio/temporal.toml`).
`CONTRACTING_TEMPORAL_ADDRESS` and `CONTRACTING_TEMPORAL_NAMESPACE` only apply when neither
gives an address (or a namespace): they are where `contracting dev` runs its server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import TLSConfig

from codec.converter import build_data_converter
from schemas.search_attributes import ALL_KEYS
from settings import Settings

RETIRED_VARIABLES = {
    "CONTRACTING_TEMPORAL_TLS": "TEMPORAL_TLS=true",
    "CONTRACTING_TEMPORAL_TLS_CERT": "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "CONTRACTING_TEMPORAL_TLS_KEY": "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "CONTRACTING_TEMPORAL_API_KEY": "TEMPORAL_API_KEY",
}
"""The connection variables of earlier versions, and what replaces them: refused rather
than silently ignored (a worker would otherwise connect without TLS)."""

CERT_VARIABLES = "TEMPORAL_TLS_CLIENT_CERT_PATH (or _DATA)"
KEY_VARIABLES = "TEMPORAL_TLS_CLIENT_KEY_PATH (or _DATA)"


class TemporalConfigError(RuntimeError):
    """The Temporal connection is misconfigured; the message says what to set."""


@dataclass(frozen=True)
class TemporalTarget:
    """Everything `Client.connect` needs but the data converter, resolved once."""

    address: str
    namespace: str
    api_key: str | None
    tls: bool | TLSConfig
    rpc_metadata: Mapping[str, str]

    def describe(self) -> str:
        """`host:port (namespace ns, mTLS)`: for logs and errors, no secret in it."""
        if isinstance(self.tls, TLSConfig):
            security = "mTLS" if self.tls.client_cert else "TLS"
        else:
            security = "TLS" if self.tls else "plaintext"
        if self.api_key:
            security += ", API key"
        return f"{self.address} (namespace {self.namespace}, {security})"


def temporal_target(settings: Settings, environ: Mapping[str, str] | None = None) -> TemporalTarget:
    """Where to connect: the envconfig profile with `TEMPORAL_*` overrides, then the
    settings' address and namespace for what neither gives."""
    env = dict(os.environ if environ is None else environ)
    for old, new in RETIRED_VARIABLES.items():
        if env.get(old):
            raise TemporalConfigError(
                f"{old} is no longer read: set {new} instead (Temporal's standard variables, "
                "see the README's 'Connecting to a Temporal cluster')"
            )
    config_file = env.get("TEMPORAL_CONFIG_FILE")
    if config_file and not Path(config_file).is_file():
        raise TemporalConfigError(
            f"TEMPORAL_CONFIG_FILE={config_file} does not exist: point it at the TOML file "
            "of the profiles, or unset it"
        )
    try:
        profile = ClientConfigProfile.load(
            profile=env.get("TEMPORAL_PROFILE"), override_env_vars=env
        )
    except Exception as error:  # the SDK bridge's ConfigError: a missing profile, bad TOML
        raise TemporalConfigError(
            f"the Temporal client configuration cannot be read: {error} "
            "(TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE)"
        ) from None
    tls: bool | TLSConfig = profile.api_key is not None  # an API key always goes over TLS
    if profile.tls is not None:
        has_cert = profile.tls.client_cert is not None
        has_key = profile.tls.client_private_key is not None
        if has_cert != has_key:
            given, missing = (
                (CERT_VARIABLES, KEY_VARIABLES) if has_cert else (KEY_VARIABLES, CERT_VARIABLES)
            )
            raise TemporalConfigError(
                f"a TLS client {'certificate' if has_cert else 'key'} is configured "
                f"({given}, or its profile entry) without its "
                f"{'key' if has_cert else 'certificate'} ({missing}): mTLS needs both "
                "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH"
            )
        try:
            tls = profile.tls.to_connect_tls_config()
        except OSError as error:
            raise TemporalConfigError(
                f"a Temporal TLS file cannot be read: {error.filename}: {error.strerror} "
                "(TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH, "
                "TEMPORAL_TLS_SERVER_CA_CERT_PATH)"
            ) from None
    return TemporalTarget(
        address=profile.address or settings.temporal_address,
        namespace=profile.namespace or settings.temporal_namespace,
        api_key=profile.api_key,
        tls=tls,
        rpc_metadata=dict(profile.grpc_meta),
    )


def connect_options(settings: Settings, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The keyword arguments of `Client.connect` for this process: the target and the data
    converter (pydantic, encrypted when codec keys are configured). Every client is built
    from them, so that none misses the codec or the TLS settings."""
    target = temporal_target(settings, environ)
    return {
        "target_host": target.address,
        "namespace": target.namespace,
        "api_key": target.api_key,
        "tls": target.tls,
        "rpc_metadata": target.rpc_metadata,
        "data_converter": build_data_converter(settings.codec_keyring()),
    }


class TemporalUnreachable(RuntimeError):
    """Temporal did not answer the connection; the message names where it was looked for."""


async def connect_temporal(settings: Settings) -> Client:
    """A client with the process's connection options (`connect_options`)."""
    options = connect_options(settings)
    try:
        return await Client.connect(**options)
    except RuntimeError as error:  # the SDK's connection errors
        where = temporal_target(settings).describe()
        raise TemporalUnreachable(f"cannot reach Temporal at {where}: {error}") from error


async def register_search_attributes(client: Client) -> None:
    """Register every custom search attribute of the workflows on a fresh server (the
    time-skipping test server refuses to upsert unregistered ones, like a real cluster)."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
                for key in ALL_KEYS
            },
        )
    )


def _type_name(kind: int) -> str:
    """`INDEXED_VALUE_TYPE_KEYWORD` → `Keyword`, as the `temporal` CLI names types."""
    name = IndexedValueType.Name(IndexedValueType.ValueType(kind))
    return name.removeprefix("INDEXED_VALUE_TYPE_").replace("_", " ").title().replace(" ", "")


class SearchAttributeConflict(RuntimeError):
    """A search attribute is registered with another type than the workflows use."""


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the workflows' search attributes that are missing in the client's namespace
    and return their names; one registered with another type is a `SearchAttributeConflict`
    (a workflow upserting it would fail), never silently kept."""
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    existing = {name: int(kind) for name, kind in listed.custom_attributes.items()}
    missing: dict[str, IndexedValueType.ValueType] = {}
    conflicts: list[str] = []
    for key in ALL_KEYS:
        wanted = int(key.indexed_value_type)
        if key.name not in existing:
            missing[key.name] = IndexedValueType.ValueType(wanted)
        elif existing[key.name] != wanted:
            conflicts.append(
                f"{key.name} is registered as {_type_name(existing[key.name])} "
                f"but the workflows use {_type_name(wanted)}"
            )
    if conflicts:
        raise SearchAttributeConflict(
            f"namespace {client.namespace}: {'; '.join(conflicts)}. Remove or rename the "
            "attribute on the cluster (`temporal operator search-attribute remove`)"
        )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
