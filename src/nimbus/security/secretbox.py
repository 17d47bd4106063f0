"""Secrets the service must be able to read back (SigV4 secret keys), sealed at rest.

AES-256-GCM under a key derived with HKDF from the service's signing key, so that a copy of
the store alone reveals none of them. Each secret is bound to its record (the associated
data), so a sealed value copied onto another record does not open.
"""

import base64
import binascii
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1."
_NONCE_BYTES = 12


class SecretBox:
    def __init__(self, key: bytes | Callable[[], bytes], *, purpose: str) -> None:
        self._key = key
        self._purpose = purpose.encode()
        self._aead: AESGCM | None = None

    def seal(self, secret: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._cipher().encrypt(nonce, secret.encode(), context.encode())
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, *, context: str) -> str:
        """The secret; ValueError if it was sealed under another key or for another record."""
        from cryptography.exceptions import InvalidTag

        if not sealed.startswith(_PREFIX):
            raise ValueError("unknown sealed-secret format")
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(_PREFIX))
            nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._cipher().decrypt(nonce, body, context.encode()).decode()
        except (binascii.Error, InvalidTag, UnicodeDecodeError):
            # Not chained: a UnicodeDecodeError holds the opened plaintext, the secret itself.
            raise ValueError("the sealed secret does not open with this key") from None

    def _cipher(self) -> "AESGCM":
        if self._aead is None:
            # cryptography, only once a secret is sealed or opened: a cold start serving a
            # bearer token never needs it.
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            master = self._key() if callable(self._key) else self._key
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._purpose)
            self._aead = AESGCM(derived.derive(master))
        return self._aead
