"""Second factors: an account's TOTP authenticator and its recovery codes."""

from dataclasses import field
from datetime import datetime
from typing import Literal

from nimbus.values import frozen

# The second factors an account can have: an authenticator app, and passkeys.
FactorMethod = Literal["totp", "passkey"]


@frozen
class TotpFactor:
    """An account's TOTP authenticator (RFC 6238). Pending from enrolment until a first code
    confirms it; only a confirmed factor is asked for at login."""

    user_id: str
    # The shared secret, sealed (nimbus.security.secretbox) for this user.
    sealed_secret: str = field(repr=False)
    created_at: datetime
    confirmed_at: datetime | None  # None while the enrolment is pending
    # The latest time step whose code was accepted: a code of that step or before is a replay.
    last_step: int
    recovery_codes_left: int  # unused recovery codes

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None
