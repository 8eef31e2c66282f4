"""Payload encryption: event data and results are stored in Temporal encrypted with AES-256-GCM.

Each encrypted payload names its key id in its metadata, so keys can rotate: new payloads use the active
key, old ones still decrypt with the key that wrote them as long as it stays configured. Temporal (and
anyone reading its database) sees only ciphertext; an operator's Temporal UI decodes through the API's
codec endpoint (``/codec``), which only callers with an API key may use.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload that cannot be decrypted (unknown key id, tampered data) or a bad key setting."""


def parse_keys(keys: Mapping[str, str]) -> dict[str, bytes]:
    """Key ids to 32-byte keys given as base64 (``LONGHAUL_PAYLOAD_KEYS``)."""
    parsed = {}
    for key_id, encoded in keys.items():
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise CodecError(f"payload key {key_id!r} is not base64") from error
        if len(key) != 32:
            raise CodecError(f"payload key {key_id!r} must be 32 bytes (AES-256), not {len(key)}")
        parsed[key_id] = key
    return parsed


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise CodecError(f"the active payload key {active!r} is not among the configured keys")
        self.keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active = active

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self.keys[self.active]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self.active.encode())
            encoded.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID: self.active.encode()}, data=nonce + sealed)
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)  # written before encryption was turned on
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self.keys.get(key_id)
            if cipher is None:
                raise CodecError(f"payload encrypted with key {key_id!r}, which is not configured")
            try:
                plain = cipher.decrypt(
                    payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], key_id.encode()
                )
            except Exception as error:  # InvalidTag: tampered, or the wrong key under that id
                raise CodecError(f"payload does not decrypt with key {key_id!r}") from error
            original = Payload()
            original.ParseFromString(plain)
            decoded.append(original)
        return decoded
