"""Login sessions: one per login, holding a chain of single-use refresh tokens.

Access tokens name their session (`sid`), so revoking a session (logout, a reused refresh
token, a password or role change, a deleted user) also ends the access tokens issued in it.
"""

from dataclasses import field
from datetime import datetime

from nimbus.values import frozen


@frozen
class Session:
    id: str
    user_id: str
    scopes: frozenset[str]  # what the login granted; a refresh never widens it
    created_at: datetime
    revoked_at: datetime | None
    # What its owner sees in their list of sessions: the client that logged in, from where,
    # and when the session last got new tokens (a login or a refresh; None: never since).
    user_agent: str | None = None
    address: str | None = None
    last_used_at: datetime | None = None


@frozen
class RefreshToken:
    id: str
    session_id: str
    # The sha256 of the token's secret half; the secret itself is never stored.
    secret_hash: str = field(repr=False)
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
