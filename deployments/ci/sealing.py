"""Secrets Diploi must read back, sealed at rest; and tokens it only ever compares, hashed.

A webhook secret is the HMAC key GitHub signs pushes with, and a deploy key's private half is
mounted into clone steps: Diploi needs both in clear, so they are sealed (Fernet: AES-128-CBC with
an HMAC) with a key from ``SECRETS_ENCRYPTION_KEY``, else derived from ``SECRET_KEY``. A build
token is only ever compared with what a CI presents, so only its SHA-256 is stored (it holds 256
random bits: a fast hash is enough, no password hashing needed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class UnsealError(ValueError):
    """A sealed value no longer opens: the encryption key changed since it was sealed."""


def _fernet() -> Fernet:
    source = settings.SECRETS_ENCRYPTION_KEY or settings.SECRET_KEY
    key = hashlib.sha256(b"diploi-sealed-secrets:" + source.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode("ascii")


def unseal(sealed: str) -> str:
    try:
        return _fernet().decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, ValueError) as error:
        raise UnsealError(
            "A stored secret cannot be read: SECRETS_ENCRYPTION_KEY (or SECRET_KEY) changed since it was "
            "created. Rotate it on the project's settings page."
        ) from error


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is GitHub's ``sha256=<hex HMAC-SHA256 of body>``, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("utf-8", "replace"))
