"""Access-token signing keys, each named by its key id (`kid`, a token's header names it).

Key 0 is the root key's own and is stored nowhere; each `nimbus keys rotate` stores one more,
sealed under the root key. A key's state follows from the keys' creation times alone
(nimbus.security.key_ring), so every process that has read the same keys agrees on it.
"""

from dataclasses import field
from datetime import datetime
from enum import StrEnum

from nimbus.values import frozen


@frozen
class SigningKey:
    """A rotated key as stored: never the key itself, only its sealed form."""

    kid: str
    sealed_key: str = field(repr=False)  # SecretBox under the root key, bound to `kid`
    created_at: datetime


class KeyState(StrEnum):
    NEXT = "next"  # published: every process learns it before it signs anything
    SIGNING = "signing"  # the key new tokens are signed with
    VERIFYING = "verifying"  # replaced; its tokens are still valid, so they still verify
    RETIRED = "retired"  # every token it signed has expired: a token naming it is refused
    UNUSABLE = "unusable"  # does not open under this root key (another one sealed it): ignored


@frozen
class KeyStatus:
    kid: str
    state: KeyState
    created_at: datetime | None  # None for key 0, the root key's own
    signs_from: datetime | None = None  # None for key 0, which signs from the start
    signs_until: datetime | None = None  # when the next key takes over; None while none does
    retires_at: datetime | None = None  # None while no key has taken over
