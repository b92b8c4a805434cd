"""One way to reach Temporal from every process (worker, gateway, CLI): address, namespace,
TLS or API key."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import TLSConfig

from schemas.search_attributes import ALL_KEYS
from settings import Settings


def _tls(settings: Settings) -> bool | TLSConfig:
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    # Temporal Cloud with an API key always uses TLS.
    return settings.temporal_tls or settings.temporal_api_key is not None


async def connect_temporal(settings: Settings) -> Client:
    """A client with the pydantic data converter (DESIGN.md conventions)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        tls=_tls(settings),
        api_key=api_key,
    )


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
