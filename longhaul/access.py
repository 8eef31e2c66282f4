"""Public access tokens: what a backend hands a browser so it can watch runs live, and nothing else.

A token is read-only, expires, and is scoped to one run or to the runs carrying one tag, of one tenant.
It is stateless and signed (:mod:`longhaul.signing`, purpose ``access``): ``pat_<claims>.<signature>``,
the claims base64url JSON, like a JWT with one fixed algorithm, so no table is read to check one and any
API process checks any other's. It is no API key (those start ``lh_``): presented as one, it is refused,
and the only endpoints that take it are the run streams (:mod:`longhaul.api.realtime`).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError, model_validator

from longhaul.models import ID_PATTERN, TAG_PATTERN
from longhaul.signing import signature, signed

PREFIX = "pat_"
PURPOSE = "access"
MAX_TTL_SECONDS = 7 * 24 * 3600


class AccessScope(BaseModel):
    """What a token may watch: one run (``run_id``) or every run with a tag (``tag``) of ``tenant``."""

    tenant: str
    run_id: str | None = None
    tag: str | None = None
    expires_at: datetime

    @model_validator(mode="after")
    def _one_scope(self) -> AccessScope:
        if (self.run_id is None) == (self.tag is None):
            raise ValueError("a token is scoped to one run or to one tag")
        return self

    def allows(self, run_id: str, tags: list[str]) -> bool:
        """Whether the token may watch run ``run_id`` carrying ``tags``."""
        return run_id == self.run_id if self.run_id is not None else self.tag in tags


class AccessTokenRequest(BaseModel):
    """What the token may watch: one run, or every run with a tag (now and later) — exactly one."""

    run_id: str | None = Field(default=None, max_length=40, pattern=ID_PATTERN)
    tag: str | None = Field(default=None, min_length=1, max_length=100, pattern=TAG_PATTERN)
    ttl_seconds: int = Field(default=3600, ge=60, le=MAX_TTL_SECONDS, description="How long it works.")

    @model_validator(mode="after")
    def _one_scope(self) -> AccessTokenRequest:
        if (self.run_id is None) == (self.tag is None):
            raise ValueError("give run_id or tag (one of them)")
        return self


class _Claims(BaseModel):
    t: str = Field(description="tenant")
    r: str | None = Field(default=None, description="run id")
    g: str | None = Field(default=None, description="tag")
    e: int = Field(description="expiry, Unix seconds")


class InvalidAccessTokenError(ValueError):
    """Malformed, not signed here, or expired; the message says which."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def mint(key: bytes, scope: AccessScope) -> str:
    claims = _Claims(t=scope.tenant, r=scope.run_id, g=scope.tag, e=int(scope.expires_at.timestamp()))
    body = _b64(claims.model_dump_json(exclude_none=True).encode())
    return f"{PREFIX}{body}.{signature(key, PURPOSE, body)}"


def verify(key: bytes, token: str, *, now: datetime | None = None) -> AccessScope:
    """The scope ``token`` grants; raises InvalidAccessTokenError."""
    body, _, presented = token.removeprefix(PREFIX).partition(".")
    if not token.startswith(PREFIX) or not body or not presented:
        raise InvalidAccessTokenError("malformed access token")
    if not signed(key, PURPOSE, body, presented):
        raise InvalidAccessTokenError("access token signature does not match: it was not issued here")
    try:
        claims = _Claims.model_validate(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))
    except (binascii.Error, ValueError, ValidationError) as error:  # signed by us: only a bug gets here
        raise InvalidAccessTokenError("malformed access token") from error
    expires_at = datetime.fromtimestamp(claims.e, UTC)
    if expires_at <= (now or datetime.now(UTC)):
        raise InvalidAccessTokenError(f"access token expired at {expires_at:%Y-%m-%d %H:%M:%S} UTC")
    return AccessScope(tenant=claims.t, run_id=claims.r, tag=claims.g, expires_at=expires_at)
