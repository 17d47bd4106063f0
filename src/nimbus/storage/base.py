"""The storage interface: one Protocol per store, and the bundle a backend opens.

Every method is one atomic operation against the store; none reads, changes in Python and
writes back. Missing records raise NotFound, unique-value clashes Conflict, stale versions
PreconditionFailed, and an unreachable store Unavailable (see nimbus.domain.errors).
"""

from datetime import datetime
from typing import Protocol

from nimbus.domain.paging import Page
from nimbus.domain.sessions import RefreshToken
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.domain.users import User


class UserStore(Protocol):
    def add(self, user: User) -> None:
        """Store a new user; Conflict if its username or email is taken."""

    def get(self, user_id: str) -> User:
        """The user with this id; NotFound if there is none."""

    def find_by_username(self, username: str) -> User | None:
        """The user with this username, compared case-insensitively."""

    def find_by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively."""

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        """Users, oldest first."""

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        """Set last_login, and replace the password hash when it was upgraded at login."""


class TodoStore(Protocol):
    def add(self, todo: Todo) -> None:
        """Store a new todo."""

    def get(self, owner: str, uid: str) -> Todo:
        """The owner's todo; NotFound if there is none (another user's todo is not found)."""

    def list(
        self, owner: str, *, state: TodoState | None, limit: int, cursor: str | None
    ) -> Page[Todo]:
        """The owner's todos, newest first, optionally only those in `state`."""

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Todo:
        """Apply changes and bump the version in one write, if the version still matches."""

    def delete(self, owner: str, uid: str, *, expected_version: int | None) -> None:
        """Remove the todo, if the version still matches."""


class SessionStore(Protocol):
    def add(self, token: RefreshToken) -> None:
        """Store a newly issued refresh token."""


class Storage(Protocol):
    """An opened backend: its stores, and what the service needs to manage it."""

    users: UserStore
    todos: TodoStore
    sessions: SessionStore

    def create_schema(self) -> None:
        """Create tables and indexes if they do not exist; safe to run from several workers."""

    def ping(self) -> None:
        """Return if the store answers; Unavailable otherwise."""

    def close(self) -> None:
        """Release connections."""
