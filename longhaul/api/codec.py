"""Temporal's remote codec protocol, so the Temporal UI (or ``temporal --codec-endpoint``) shows
decrypted payloads to an operator.

Who may decode: a caller with an API key (``temporal --codec-auth``), a browser signed in to the dashboard
(its session cookie: a Temporal UI configured with ``codec.includeCredentials`` sends it, same site), or
whoever holds the signed codec URL (:func:`codec_url`): for a Temporal UI that sends no credentials at
all, as the dev server's (``--ui-codec-endpoint`` has no credentials option). ``longhaul dev`` gives its
Temporal UI that URL, so the developer's UI decodes with no setup.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from longhaul.api.deps import JSON_BODY, current_caller
from longhaul.api.ui.session import caller_of_cookie
from longhaul.codec import CodecError
from longhaul.keys import Caller
from longhaul.signing import signature, signed

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


SIGNED_PURPOSE = "codec"
SIGNED_SUBJECT = "temporal-ui"


def codec_url(api_url: str, key: bytes) -> str:
    """The codec endpoint whose path is its own credential (for a Temporal UI that sends none). Anyone
    with it can decode: give it to an operator's UI only; a new signing secret voids it."""
    return f"{api_url.rstrip('/')}/codec/signed/{signature(key, SIGNED_PURPOSE, SIGNED_SUBJECT)}"


async def codec_caller(request: Request) -> Caller:
    """An API key in the header, or else the dashboard's session cookie (neither: the API's 401)."""
    keyed = request.headers.get("authorization") or request.headers.get("x-api-key")
    if not keyed and (caller := await caller_of_cookie(request)) is not None:
        return caller
    return await current_caller(request)


@router.post("/codec/signed/{signed_by}/{operation}", response_model=CodecPayloads, dependencies=JSON_BODY)
async def signed_codec(
    signed_by: str, operation: Literal["encode", "decode"], body: CodecPayloads, request: Request
) -> CodecPayloads:
    """The codec at its signed URL (:func:`codec_url`): the path is the credential."""
    if not signed(request.app.state.waitpoints.key, SIGNED_PURPOSE, SIGNED_SUBJECT, signed_by):
        raise HTTPException(status_code=403, detail="this codec URL's signature was not issued here")
    return await _run(operation, body, request)


@router.post("/codec/{operation}", response_model=CodecPayloads, dependencies=JSON_BODY)
async def codec(
    operation: Literal["encode", "decode"],
    body: CodecPayloads,
    request: Request,
    caller: Annotated[Caller, Depends(codec_caller)],
) -> CodecPayloads:
    """Encode or decode payloads with the deployment's payload keys (404 while encryption is off)."""
    return await _run(operation, body, request)


async def _run(operation: str, body: CodecPayloads, request: Request) -> CodecPayloads:
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
