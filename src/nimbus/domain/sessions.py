"""Refresh-token sessions: a family of tokens, each used once, rotated on use."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: str
    family: str
    user_id: str
    secret_hash: str  # sha256 of the token's secret half; the secret itself is never stored
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked: bool
