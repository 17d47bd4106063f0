from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from nimbus.domain.users import (
    EMAIL_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    Role,
    User,
)


def _lower(value: str) -> str:
    return value.lower()


Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN.pattern)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN.pattern),
    AfterValidator(_lower),
]
Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    email: Email | None = None
    name: DisplayName | None = None


class UserPublic(BaseModel):
    id: str
    username: str
    email: str | None
    name: str | None
    role: Role
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None

    @classmethod
    def of(cls, user: User) -> "UserPublic":
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            name=user.name,
            role=user.role,
            created_at=user.created_at,
            updated_at=user.updated_at,
            last_login=user.last_login,
        )
