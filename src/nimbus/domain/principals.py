"""Who is making a request, as established from a verified token."""

from dataclasses import field
from datetime import datetime
from typing import Any

from nimbus.domain.users import ADMIN_GROUP, Role
from nimbus.values import frozen

USER_SCOPES = frozenset({"profile", "todos", "messages"})
ADMIN_SCOPES = USER_SCOPES | {"admin"}


@frozen
class Principal:
    user_id: str
    username: str
    role: Role
    groups: tuple[str, ...]
    scopes: frozenset[str]
    token_id: str  # the access token's jti
    expires_at: datetime
    session_id: str | None = None  # None for tokens from an external identity provider
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        """Administration needs both the group (RBAC) and the scope the token was granted."""
        return ADMIN_GROUP in self.groups and "admin" in self.scopes


@frozen
class SessionCheck:
    """What keeps an access token good after its signature: its session (one of nimbus's;
    None for a provider's token) not revoked, and the token itself not revoked."""

    session_id: str | None
    token_id: str


@frozen
class Claimant:
    """The principal a verified access token names, before its session is known to be live.
    A service serves it only through store calls that make that check themselves
    (storage.base.TodoStore's `live`; on SQL, in the statement that does the work), so that a
    request costs one store call, not two."""

    principal: Principal

    @property
    def check(self) -> SessionCheck:
        return SessionCheck(self.principal.session_id, self.principal.token_id)


def scopes_for(role: Role) -> frozenset[str]:
    return ADMIN_SCOPES if role is Role.ADMIN else USER_SCOPES
