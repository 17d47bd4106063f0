from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from nimbus.api.schemas import NoNul, check_changes
from nimbus.domain.users import (
    EMAIL_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    Role,
)


def _lower(value: str) -> str:
    return value.lower()


Username = Annotated[str, StringConstraints(pattern=USERNAME_PATTERN.pattern)]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN.pattern),
    AfterValidator(_lower),
    NoNul,
]
# The widest bounds the settings allow; the configured ones, and the list of common passwords,
# are the password policy's (400), checked after this schema (422).
Password = Annotated[
    str,
    Field(
        min_length=PASSWORD_MIN_LENGTH,
        max_length=PASSWORD_MAX_LENGTH,
        description="Characters (code points) within NIMBUS_PASSWORD_MIN_LENGTH and"
        " NIMBUS_PASSWORD_MAX_LENGTH; not a common password, nor the username or email",
    ),
]
CurrentPassword = Annotated[
    str | None,
    Field(
        max_length=PASSWORD_MAX_LENGTH,
        description="Your password now: needed to change your own password or email",
    ),
]
DisplayName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul
]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"username": "alice", "password": "correct horse battery", "name": "Alice"}
            ]
        },
    )

    username: Username
    password: Password
    email: Email | None = None
    name: DisplayName | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str
    email: str | None
    name: str | None
    role: Role
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None
    email_verified: bool = Field(description="Its owner followed a link mailed to this email")
    disabled: bool = Field(description="An administrator disabled it: no login, no refresh")


class UserReplace(BaseModel):
    """PUT: email and name are replaced (null clears them); password and role only if sent."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None
    name: DisplayName | None
    password: Password | None = None
    role: Role | None = None
    current_password: CurrentPassword = None


class UserPatch(BaseModel):
    """PATCH: any of the fields; email and name may be null to clear them. `disabled`
    (administrators) goes alone: a refusal to disable must leave every other field as it was."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Al"}]})

    email: Email | None = None
    name: DisplayName | None = None
    password: Password | None = None
    role: Role | None = None
    disabled: bool | None = Field(
        default=None,
        description="Administrators: true ends the account's sessions and refuses its logins"
        " and refreshes, keeping its data; false lets it log in again. Sent on its own",
    )
    current_password: CurrentPassword = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        check_changes(self, not_null=("password", "role", "disabled"))
        if "disabled" in self.model_fields_set and self.model_fields_set - {
            "disabled",
            "current_password",
        }:
            raise ValueError("disabled is changed on its own: send the other fields separately")
        return self


class AccountDeletion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: CurrentPassword = None


class WhoAmI(BaseModel):
    user: UserPublic
    claims: dict[str, Any]


LastLogin = Annotated[
    None,
    Field(description="Set by nimbus at each login; accepted only as null"),
]


class EmailSignUp(BaseModel):
    """Seed 001's sign-up: an email and no username (one is made from the email)."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    password: Password
    name: DisplayName | None = None


class EmailUserReplace(BaseModel):
    """Seed 001's PUT: the name and the password (the email is the account's address)."""

    model_config = ConfigDict(extra="forbid")

    name: DisplayName | None
    password: Password
    last_login: LastLogin = None
    current_password: CurrentPassword = None


class EmailUserPatch(BaseModel):
    """Seed 001's PATCH: the name, the password or both."""

    model_config = ConfigDict(extra="forbid")

    name: DisplayName | None = None
    password: Password | None = None
    last_login: LastLogin = None
    current_password: CurrentPassword = None

    @model_validator(mode="after")
    def _something_to_change(self) -> Self:
        if not self.model_fields_set & {"name", "password"}:
            raise ValueError("give at least one of name, password")
        if "password" in self.model_fields_set and self.password is None:
            raise ValueError("password cannot be null")
        return self
