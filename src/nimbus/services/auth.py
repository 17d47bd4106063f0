"""Login and token checks."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from nimbus.domain.errors import InvalidCredentials
from nimbus.domain.ids import new_id
from nimbus.domain.principals import Principal
from nimbus.domain.sessions import RefreshToken
from nimbus.domain.users import Role, User
from nimbus.security.passwords import PasswordHasher
from nimbus.security.tokens import AccessTokens, IssuedToken
from nimbus.services.clock import Clock, utc_now
from nimbus.storage.base import SessionStore, UserStore

USER_SCOPES = frozenset({"profile", "todos", "messages"})
ADMIN_SCOPES = USER_SCOPES | {"admin"}


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: IssuedToken
    refresh_token: str


class AuthService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        hasher: PasswordHasher,
        tokens: AccessTokens,
        refresh_ttl: timedelta,
        clock: Clock = utc_now,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._hasher = hasher
        self._tokens = tokens
        self._refresh_ttl = refresh_ttl
        self._clock = clock

    def login(self, *, username: str | None, email: str | None, password: str) -> TokenPair:
        """Tokens for valid credentials; one InvalidCredentials for every kind of failure."""
        user = self._find(username, email)
        if user is None:
            self._hasher.verify_dummy(password)
            raise InvalidCredentials()
        if not self._hasher.verify(user.password_hash, password):
            raise InvalidCredentials()
        now = self._clock()
        upgraded = (
            self._hasher.hash(password) if self._hasher.needs_rehash(user.password_hash) else None
        )
        self._users.record_login(user.id, now, upgraded)
        return self._issue(user, family=new_id())

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token names; Unauthenticated if it is not valid."""
        return self._tokens.verify(token)

    def _find(self, username: str | None, email: str | None) -> User | None:
        if username is not None:
            return self._users.find_by_username(username)
        if email is not None:
            return self._users.find_by_email(email)
        return None

    def _issue(self, user: User, *, family: str) -> TokenPair:
        now = self._clock()
        scopes = ADMIN_SCOPES if user.role is Role.ADMIN else USER_SCOPES
        access = self._tokens.issue(user, scopes, now)
        token_id, secret = new_id(), secrets.token_urlsafe(32)
        self._sessions.add(
            RefreshToken(
                id=token_id,
                family=family,
                user_id=user.id,
                secret_hash=_digest(secret),
                created_at=now,
                expires_at=now + self._refresh_ttl,
                used_at=None,
                revoked=False,
            )
        )
        return TokenPair(access=access, refresh_token=f"{token_id}.{secret}")


def _digest(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()
