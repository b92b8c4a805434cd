"""The data converter of every process that makes a Temporal client: pydantic JSON, then
encryption when codec keys are configured. One function, so that no client is forgotten."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from codec.aes import EncryptionCodec
from codec.keys import Keyring


def build_data_converter(keyring: Keyring | None) -> DataConverter:
    """The pydantic converter (DESIGN.md conventions), encrypting with `keyring` if given.

    With keys, failure messages and stack traces are moved into an encrypted payload too
    (they may quote what an activity was working on); the codec server shows them to ops."""
    if keyring is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keyring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
