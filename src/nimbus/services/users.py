"""Accounts: sign-up, look-up and password checks."""

from nimbus.domain.errors import NotFound
from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.users import Role, User
from nimbus.security.passwords import PasswordHasher
from nimbus.services.clock import Clock, utc_now
from nimbus.storage.base import UserStore


class UserService:
    def __init__(self, store: UserStore, hasher: PasswordHasher, clock: Clock = utc_now) -> None:
        self._store = store
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

    def get(self, user_id: str) -> User:
        return self._store.get(user_id)

    def get_by_username(self, username: str) -> User:
        user = self._store.find_by_username(username)
        if user is None:
            raise NotFound(f"No user named {username!r}")
        return user

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        return self._store.list(limit=limit, cursor=cursor)

    def check_password(self, username: str, password: str) -> bool:
        user = self._store.find_by_username(username)
        if user is None:
            self._hasher.verify_dummy(password)
            return False
        return self._hasher.verify(user.password_hash, password)
