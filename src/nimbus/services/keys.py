"""Rotating the access-token signing key, for the operator (`nimbus keys`).

A rotation adds a key; it logs no one out. The new key is published first and signs only once
every process has read it; the key it replaces verifies the tokens it signed until they have
expired, then retires (nimbus.security.key_ring). The root key, and everything derived from it
or sealed under it (refresh rotation, device cookies, mailed links, SigV4 secrets), stays.
"""

from datetime import datetime

from nimbus.domain.audit import AuditKind
from nimbus.domain.signing_keys import KeyStatus
from nimbus.security.key_ring import KeyRing
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.storage.base import SigningKeyStore
from nimbus.values import frozen


@frozen
class Rotation:
    kid: str
    created_at: datetime
    signs_from: datetime


class KeyService:
    def __init__(
        self,
        ring: KeyRing,
        store: SigningKeyStore,
        *,
        audit: AuditTrail,
        clock: Clock = utc_now,
    ) -> None:
        self._ring = ring
        self._store = store
        self._audit = audit
        self._clock = clock

    def rotate(self) -> Rotation:
        """Add a new signing key: stored now, signing once every process has read it."""
        key = self._ring.new_key(self._clock())
        self._store.add(key)
        kid = self._ring.kid_for(key)  # the kid its tokens carry, as `nimbus keys list` shows
        self._audit.record(AuditKind.KEY_ROTATED, subject=kid, detail={"kid": kid})
        return Rotation(kid, key.created_at, key.created_at + self._ring.publish)

    @property
    def algorithm(self) -> str:
        """The access tokens' algorithm (NIMBUS_TOKEN_ALGORITHM)."""
        return self._ring.algorithm

    def public_keys(self) -> list[dict[str, str]]:
        """The public keys of every key that is next, signing or verifying, as JWKs; none
        under HS256."""
        return self._ring.public_keys()

    def list(self) -> list[KeyStatus]:
        """Every key, the root key's own first, with its state now."""
        return self._ring.statuses()
