"""Who is making a request, as established from a verified token."""

from dataclasses import dataclass
from typing import Any

from nimbus.domain.users import Role


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    role: Role
    groups: tuple[str, ...]
    scopes: frozenset[str]
    claims: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
