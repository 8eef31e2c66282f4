"""Temporal's remote codec protocol, so the Temporal UI (or ``temporal --codec-endpoint``) shows
decrypted payloads to an operator holding an API key."""

from __future__ import annotations

import base64
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from longhaul.codec import CodecError
from starters.api.deps import JSON_BODY, Tenant

router = APIRouter(tags=["codec"])


class CodecPayload(BaseModel):
    """A payload as Temporal's codec protocol carries it: metadata values and data in base64."""

    metadata: dict[str, str] = Field(default_factory=dict)
    data: str = ""

    def to_proto(self) -> Payload:
        return Payload(
            metadata={k: base64.b64decode(v) for k, v in self.metadata.items()},
            data=base64.b64decode(self.data),
        )

    @classmethod
    def from_proto(cls, payload: Payload) -> CodecPayload:
        return cls(
            metadata={k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            data=base64.b64encode(payload.data).decode(),
        )


class CodecPayloads(BaseModel):
    payloads: list[CodecPayload]


@router.post("/codec/{operation}", response_model=CodecPayloads, dependencies=JSON_BODY)
async def codec(
    operation: Literal["encode", "decode"], body: CodecPayloads, request: Request, tenant: Tenant
) -> CodecPayloads:
    """Encode or decode payloads with the deployment's payload keys (404 while encryption is off)."""
    payload_codec: PayloadCodec | None = request.app.state.codec
    if payload_codec is None:
        raise HTTPException(status_code=404, detail="payload encryption is off (LONGHAUL_PAYLOAD_KEYS)")
    try:
        payloads = [p.to_proto() for p in body.payloads]
    except ValueError as error:  # binascii.Error included
        raise HTTPException(status_code=400, detail=f"payloads are not base64: {error}") from error
    try:
        done = await (
            payload_codec.encode(payloads) if operation == "encode" else payload_codec.decode(payloads)
        )
    except CodecError as error:
        raise HTTPException(status_code=400, detail=str(error)) from error
    return CodecPayloads(payloads=[CodecPayload.from_proto(p) for p in done])
