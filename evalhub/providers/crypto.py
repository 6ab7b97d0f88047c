"""Encryption at rest for provider API keys.

Scheme: Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) with keys derived by
HKDF-SHA256 from secrets in settings: ``EVALHUB_ENCRYPTION_KEYS`` (a list, newest first) when
set, else ``SECRET_KEY`` followed by ``SECRET_KEY_FALLBACKS``. The first key encrypts; every key
decrypts (``MultiFernet``).

Rotation: put the new secret first (``EVALHUB_ENCRYPTION_KEYS=new,old``, or a new ``SECRET_KEY``
with the old one in ``SECRET_KEY_FALLBACKS``), restart, run ``manage.py rotate_provider_keys``
(re-encrypts every stored key with the new secret), then drop the old secret.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

_SALT = b"providers.provider-api-key"
_INFO = b"evalhub provider api key encryption v1"


class SecretUndecryptable(Exception):
    """A stored secret that none of the configured keys opens (a secret was dropped too soon)."""

    def __init__(self) -> None:
        super().__init__(
            "the stored API key cannot be decrypted with the configured encryption keys; "
            "enter the key again (or restore the old secret in EVALHUB_ENCRYPTION_KEYS)"
        )


def _secrets() -> list[str]:
    configured = list(getattr(settings, "EVALHUB_ENCRYPTION_KEYS", []) or [])
    if configured:
        return configured
    return [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]


@sensitive_variables()
def _derive(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _fernet() -> MultiFernet:
    return MultiFernet([_derive(secret) for secret in _secrets()])


@sensitive_variables()
def secret_encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


@sensitive_variables()
def secret_decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUndecryptable() from None


def secret_rotate(token: str) -> str:
    """``token`` re-encrypted with the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUndecryptable() from None


@sensitive_variables()
def secret_hint(plaintext: str) -> str:
    """What may be shown of a key: its last four characters, for long enough keys."""
    return f"…{plaintext[-4:]}" if len(plaintext) >= 16 else ""
