"""The deployment's signing key, and HMAC signatures made with it for one purpose each.

What longhaul hands out to be presented back without an API key — waitpoint callback URLs, public access
tokens — is signed with one key (``LONGHAUL_SIGNING_SECRET``, else one made once per data dir), each
signature bound to its purpose so one kind can never stand in for another.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from longhaul.config import Settings


def signing_key(settings: Settings) -> bytes:
    """``LONGHAUL_SIGNING_SECRET``, else the key made once for the data dir (``<data_dir>/signing-secret``,
    shared by the processes of one machine; processes on several machines must share the setting)."""
    if settings.signing_secret:
        return settings.signing_secret.encode()
    path = settings.data_dir / "signing-secret"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        return _create_secret(path)


def _create_secret(path: Path) -> bytes:
    """Write a new random secret, unless another process just did (exclusive create): theirs wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32).encode()
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret)
    return secret


def signature(key: bytes, purpose: str, message: str) -> str:
    """Hex HMAC-SHA256 of ``message`` for ``purpose``."""
    return hmac.new(key, f"{purpose}:{message}".encode(), hashlib.sha256).hexdigest()


def signed(key: bytes, purpose: str, message: str, presented: str) -> bool:
    """Whether ``presented`` is the signature of ``message`` for ``purpose`` (constant time)."""
    return hmac.compare_digest(signature(key, purpose, message), presented)
