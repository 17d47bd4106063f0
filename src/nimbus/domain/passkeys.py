"""Passkeys: WebAuthn credentials an account logs in with, alone or as its second factor."""

from datetime import datetime

from nimbus.values import frozen

PASSKEY_NAME_MAX_LENGTH = 64


@frozen
class Passkey:
    """A WebAuthn credential registered to one account. Its id is the authenticator's
    credential id in base64url (no padding): unique over every account."""

    credential_id: str
    user_id: str
    public_key: str  # the COSE public key, base64url
    # The authenticator's signature counter as last seen: a later use must show a greater
    # one (or 0 again, from an authenticator that keeps none), else it is a clone.
    sign_count: int
    transports: tuple[str, ...]
    name: str
    created_at: datetime
    last_used_at: datetime | None
