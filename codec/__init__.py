"""Encrypted Temporal payloads: AES-GCM keys with ids (rotation), the payload codec, the data
converter every process uses, and the codec server that lets ops read histories."""
