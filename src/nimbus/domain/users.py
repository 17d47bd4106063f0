"""Users and the rules on their names."""

import re
from dataclasses import field
from datetime import datetime
from enum import StrEnum

from nimbus.values import frozen

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
USERNAME_BASE_LENGTH = 56  # username_from_email's, before a "-" and 6 hex digits
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024  # argon2 takes any length; the cap keeps one request cheap
NO_PASSWORD = "!"  # the hash of an account that signs in elsewhere (OIDC): matches nothing
ADMIN_GROUP = "admins"
USER_GROUP = "users"


class Role(StrEnum):
    USER = "user"
    ADMIN = "admin"


@frozen
class User:
    id: str
    username: str
    email: str | None
    name: str | None
    role: Role
    password_hash: str = field(repr=False)
    created_at: datetime
    updated_at: datetime
    last_login: datetime | None
    version: int
    external_subject: str | None = None  # "issuer|sub" for accounts from an OIDC provider
    email_verified: bool = False  # its owner followed a link mailed to the email it has now
    disabled_at: datetime | None = None  # set by an administrator: no login, no refresh

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @property
    def groups(self) -> tuple[str, ...]:
        return (ADMIN_GROUP, USER_GROUP) if self.role is Role.ADMIN else (USER_GROUP,)


class Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()


@frozen
class UserChanges:
    """Fields to set; UNSET leaves a field alone (email and name may be set to None)."""

    email: str | Unset | None = UNSET
    name: str | Unset | None = UNSET
    role: Role | Unset = UNSET
    password_hash: str | Unset = field(default=UNSET, repr=False)
    email_verified: bool | Unset = UNSET
    disabled_at: datetime | Unset | None = UNSET


def username_key(username: str) -> str:
    """The form uniqueness and look-ups use: 'Alice' and 'alice' are one account."""
    return username.casefold()


def email_key(email: str) -> str:
    return email.strip().lower()


def username_from_email(email: str) -> str:
    """A username for an account made from an email alone: the part before the @, in the
    characters a username allows, with room left for a suffix that makes it unique."""
    local = re.sub(r"[^a-z0-9_.+-]", "-", email.split("@", 1)[0].lower()).lstrip("_.+-")
    return (local or "user")[:USERNAME_BASE_LENGTH]


def login_name(typed: str) -> str:
    """The one form of a name typed at login (a username or an email), for the look-up and
    the rate limits alike: every way of writing an account's names counts against it."""
    return typed.strip().lower()
