"""Optional encryption of embeddings at rest (Fernet from the ``cryptography`` package).

The key comes from ``$FACESTREAM_GALLERY_KEY``: either a Fernet key (``Fernet.generate_key()``) or any
passphrase, which is stretched with PBKDF2-HMAC-SHA256 and the gallery's own salt.
"""

from __future__ import annotations

import base64
import hashlib
import os

from facestream.errors import FacestreamError

KEY_ENV = "FACESTREAM_GALLERY_KEY"
PBKDF2_ITERATIONS = 200_000


def key_from_env() -> str | None:
    return os.environ.get(KEY_ENV) or None


def _fernet_class():
    try:
        from cryptography.fernet import Fernet
    except ImportError as exc:
        raise FacestreamError(
            f"{KEY_ENV} is set but the 'cryptography' package is missing: pip install cryptography"
        ) from exc
    return Fernet


class Cipher:
    """Encrypts and decrypts byte strings with one gallery's key."""

    def __init__(self, secret: str, salt: bytes):
        fernet = _fernet_class()
        try:
            raw = base64.urlsafe_b64decode(secret.encode())
            key = secret.encode() if len(raw) == 32 else None
        except (ValueError, TypeError):
            key = None
        if key is None:
            derived = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, PBKDF2_ITERATIONS)
            key = base64.urlsafe_b64encode(derived)
        self._fernet = fernet(key)

    def encrypt(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token)
        except InvalidToken as exc:
            raise FacestreamError(
                f"wrong {KEY_ENV} for this gallery (cannot decrypt its embeddings)"
            ) from exc


def new_salt() -> bytes:
    return os.urandom(16)
