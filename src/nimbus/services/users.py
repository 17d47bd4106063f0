"""Accounts: sign-up, look-up, changes and removal, with who may do each."""

from nimbus.domain.errors import NotFound, PermissionDenied
from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.principals import Principal
from nimbus.domain.users import UNSET, Role, Unset, User, UserChanges
from nimbus.security.passwords import PasswordHasher
from nimbus.services.clock import Clock, utc_now
from nimbus.storage.base import SessionStore, UserStore


class UserService:
    def __init__(
        self,
        store: UserStore,
        sessions: SessionStore,
        hasher: PasswordHasher,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._hasher = hasher
        self._clock = clock

    def create(
        self,
        *,
        username: str,
        password: str,
        email: str | None = None,
        name: str | None = None,
        role: Role = Role.USER,
    ) -> User:
        """Create an account; Conflict if the username or email is taken."""
        now = self._clock()
        user = User(
            id=new_id(),
            username=username,
            email=email,
            name=name,
            role=role,
            password_hash=self._hasher.hash(password),
            created_at=now,
            updated_at=now,
            last_login=None,
            version=1,
        )
        self._store.add(user)
        return user

    def get(self, actor: Principal, user_id: str) -> User:
        _self_or_admin(actor, user_id)
        return self._store.get(user_id)

    def list(self, actor: Principal, *, limit: int, cursor: str | None) -> Page[User]:
        if not actor.is_admin:
            raise PermissionDenied("Only administrators can list users")
        return self._store.list(limit=limit, cursor=cursor)

    def update(
        self,
        actor: Principal,
        user_id: str,
        *,
        email: str | Unset | None = UNSET,
        name: str | Unset | None = UNSET,
        role: Role | Unset = UNSET,
        password: str | Unset = UNSET,
        expected_version: int | None = None,
    ) -> User:
        """Change an account. A new password or role ends the account's sessions."""
        _self_or_admin(actor, user_id)
        if not isinstance(role, Unset) and not actor.is_admin:
            raise PermissionDenied(
                "Only an administrator can change a role", code="role_change_forbidden"
            )
        changes = UserChanges(
            email=email,
            name=name,
            role=role,
            password_hash=UNSET if isinstance(password, Unset) else self._hasher.hash(password),
        )
        now = self._clock()
        user = self._store.update(user_id, changes, expected_version=expected_version, at=now)
        if not isinstance(password, Unset) or not isinstance(role, Unset):
            self._sessions.revoke_all(user_id, now)
        return user

    def delete(self, actor: Principal, user_id: str) -> None:
        """Remove an account with its todos and sessions."""
        _self_or_admin(actor, user_id)
        self._store.delete(user_id)

    def get_by_username(self, username: str) -> User:
        user = self._store.find_by_username(username)
        if user is None:
            raise NotFound(f"No user named {username!r}")
        return user

    def list_all(self, *, limit: int, cursor: str | None) -> Page[User]:
        """Every user, for the command line (which runs with the operator's authority)."""
        return self._store.list(limit=limit, cursor=cursor)

    def check_password(self, username: str, password: str) -> bool:
        user = self._store.find_by_username(username)
        if user is None:
            self._hasher.verify_dummy(password)
            return False
        return self._hasher.verify(user.password_hash, password)


def _self_or_admin(actor: Principal, user_id: str) -> None:
    # Decided before any look-up, so the answer never tells whether another id exists.
    if actor.user_id != user_id and not actor.is_admin:
        raise PermissionDenied("You can only see and change your own account")
