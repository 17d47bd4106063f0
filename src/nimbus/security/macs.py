"""Keyed digests for values the service hands out and must recognise later (device cookies,
the refresh token a rotation derives), under a key derived with HKDF from the signing key
for one purpose, so that no two uses ever share a key."""

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable


class Mac:
    def __init__(self, key: bytes | Callable[[], bytes], *, purpose: str) -> None:
        self._master = key
        self._purpose = purpose.encode()
        self._key: bytes | None = None

    def sign(self, message: str) -> str:
        return base64.urlsafe_b64encode(self.digest(message)).rstrip(b"=").decode()

    def digest(self, message: str) -> bytes:
        return hmac.digest(self._derived(), message.encode(), hashlib.sha256)

    def uuid(self, message: str) -> str:
        """An id in the UUID form the stores' other ids have, derived from `message`."""
        return str(uuid.UUID(bytes=self.digest(message)[:16]))

    def verify(self, message: str, mac: str) -> bool:
        return hmac.compare_digest(self.sign(message), mac)

    def key(self) -> bytes:
        """The derived key itself, for a signer that needs the bytes (nimbus.security.links)."""
        return self._derived()

    def _derived(self) -> bytes:
        if self._key is None:
            # cryptography, only once a derived key is used.
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            master = self._master() if callable(self._master) else self._master
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=self._purpose)
            self._key = hkdf.derive(master)
        return self._key
