"""Login, token refresh and logout, and the check every authenticated request passes."""

import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from nimbus.domain.errors import (
    Conflict,
    InvalidCredentials,
    InvalidInput,
    RateLimited,
    Unauthenticated,
)
from nimbus.domain.ids import new_id
from nimbus.domain.principals import Principal, scopes_for
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import (
    ADMIN_GROUP,
    NO_PASSWORD,
    USER_GROUP,
    USERNAME_PATTERN,
    Role,
    User,
    email_key,
    username_key,
)
from nimbus.security.bearer import BearerTokens
from nimbus.security.oidc import OidcVerifier
from nimbus.security.passwords import PasswordHasher
from nimbus.security.tokens import AccessTokens, IssuedToken
from nimbus.services.clock import Clock, utc_now
from nimbus.storage.base import RateLimitStore, SessionStore, UserStore


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed per window, per account name and per client address."""

    per_account: int = 10
    per_address: int = 100
    window_seconds: int = 15 * 60


@dataclass(frozen=True, slots=True)
class TokenPair:
    access: IssuedToken
    refresh_token: str
    scopes: frozenset[str]


class AuthService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        rate_limits: RateLimitStore,
        hasher: PasswordHasher,
        tokens: AccessTokens,
        refresh_ttl: timedelta,
        limits: LoginLimits = LoginLimits(),
        oidc: OidcVerifier | None = None,
        oidc_admin_group: str = ADMIN_GROUP,
        clock: Clock = utc_now,
    ) -> None:
        self._oidc = oidc
        self._bearer = BearerTokens(tokens, oidc)
        self._oidc_admin_group = oidc_admin_group
        self._users = users
        self._sessions = sessions
        self._rate_limits = rate_limits
        self._hasher = hasher
        self._tokens = tokens
        self._refresh_ttl = refresh_ttl
        self._limits = limits
        self._clock = clock

    def login(
        self,
        *,
        username: str | None,
        email: str | None,
        password: str,
        client: str | None,
        scopes: frozenset[str] | None = None,
    ) -> TokenPair:
        """Tokens for valid credentials; one InvalidCredentials for every kind of failure.

        Unknown accounts and wrong passwords cost the same argon2 work and count against the
        same limits, so neither the answer nor its timing tells whether an account exists.
        """
        name = username_key(username) if username is not None else email_key(email or "")
        account_key = f"login:account:{name}"
        keys = [account_key] + ([f"login:address:{client}"] if client else [])
        account_failures = self._refuse_if_limited(keys)
        user = self._find(username, email)
        verified = self._verify(user, password)
        if user is None or not verified:
            self._fail(keys)
        granted = self._grant(user, scopes)
        if account_failures:  # most logins have none: no write for them
            self._rate_limits.clear(account_key)
        upgraded = (
            self._hasher.hash(password) if self._hasher.needs_rehash(user.password_hash) else None
        )
        now = self._clock()
        self._users.record_login(user.id, now, upgraded)
        session = Session(
            id=new_id(), user_id=user.id, scopes=granted, created_at=now, revoked_at=None
        )
        secret, token = self._new_refresh_token(session.id, now)
        self._sessions.start(session, token)
        return self._pair(user, session, token, secret, now)

    def refresh(self, refresh_token: str) -> TokenPair:
        """Rotate a refresh token. A token used twice is a stolen copy: end its session."""
        token_id, _, secret = refresh_token.partition(".")
        found = self._sessions.find_refresh(token_id) if token_id and secret else None
        if found is None or not hmac.compare_digest(found[0].secret_hash, _digest(secret)):
            raise _invalid_grant("Invalid refresh token")
        token, session = found
        now = self._clock()
        if session.revoked_at is not None:
            raise _invalid_grant("The session has ended")
        if token.used_at is not None:
            self._sessions.revoke(session.id, now)
            raise _invalid_grant("Refresh token reused; the session has been ended")
        if token.expires_at <= now:
            raise _invalid_grant("Refresh token expired")
        user = self._users.get(session.user_id)
        secret, replacement = self._new_refresh_token(session.id, now)
        if not self._sessions.rotate(token.id, replacement, now):
            # Lost a race with another use of the same token: the same replay, seen late.
            self._sessions.revoke(session.id, now)
            raise _invalid_grant("Refresh token reused; the session has been ended")
        return self._pair(user, session, replacement, secret, now)

    def logout(self, principal: Principal) -> None:
        now = self._clock()
        if principal.session_id is not None:
            self._sessions.revoke(principal.session_id, now)
        self._sessions.revoke_access_token(principal.token_id, principal.expires_at, now)

    def authenticate(self, token: str, verified: dict[str, Any] | None = None) -> Principal:
        """The principal a bearer token names, if its session is still live.

        `verified` holds the token's claims when something trusted (the API Gateway
        authorizer) has already checked its signature; the claims still have to be well
        formed, and the session live.
        """
        if verified is None and self._bearer.is_ours(token):
            principal = self._tokens.verify(token)
        else:
            claims = verified if verified is not None else self._bearer.verify(token)
            if self._bearer.is_external(claims.get("iss")):
                assert self._oidc is not None
                principal = self._external_principal(self._oidc, claims, token)
            else:
                principal = self._tokens.principal(claims)
        if not self._sessions.is_active(principal.session_id, principal.token_id, self._clock()):
            raise Unauthenticated()
        return principal

    def _external_principal(
        self, oidc: OidcVerifier, claims: dict[str, Any], token: str
    ) -> Principal:
        subject = f"{claims['iss']}|{claims['sub']}"
        user = self._users.find_by_external_subject(subject) or self._enroll(subject, claims)
        groups = oidc.groups(claims)
        role = Role.ADMIN if self._oidc_admin_group in groups else Role.USER
        ours = (ADMIN_GROUP, USER_GROUP) if role is Role.ADMIN else (USER_GROUP,)
        jti = claims.get("jti")
        return Principal(
            user_id=user.id,
            username=user.username,
            role=role,
            groups=tuple(dict.fromkeys([*groups, *ours])),
            scopes=scopes_for(role),
            # Some providers (Firebase) set no jti; the token's hash identifies it as well.
            token_id=jti if isinstance(jti, str) else hashlib.sha256(token.encode()).hexdigest(),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            claims=claims,
        )

    def _enroll(self, subject: str, claims: dict[str, Any]) -> User:
        """A local account for a provider's user, made the first time its token is seen."""
        now = self._clock()
        name = claims.get("name")
        base = _username_from(claims)
        suffix = hashlib.sha256(subject.encode()).hexdigest()[:8]
        for username in (base, f"{base[:55]}-{suffix}"):
            user = User(
                id=new_id(),
                username=username,
                email=None,  # the provider's email is not verified by us; never trust it here
                name=name if isinstance(name, str) else None,
                role=Role.USER,
                password_hash=NO_PASSWORD,
                created_at=now,
                updated_at=now,
                last_login=now,
                version=1,
                external_subject=subject,
            )
            try:
                self._users.add(user)
                return user
            except Conflict:
                # Taken username, or a concurrent request enrolled this subject first.
                existing = self._users.find_by_external_subject(subject)
                if existing is not None:
                    return existing
        raise Conflict("Cannot choose a username for this identity")

    def _find(self, username: str | None, email: str | None) -> User | None:
        if username is not None:
            user = self._users.find_by_username(username)
            if user is None and "@" in username:
                # OAuth2 clients have only a "username" field; people type their email there.
                user = self._users.find_by_email(username)
            return user
        if email is not None:
            return self._users.find_by_email(email)
        return None

    def _grant(self, user: User, requested: frozenset[str] | None) -> frozenset[str]:
        allowed = scopes_for(user.role)
        if requested is None:
            return allowed
        if not requested <= allowed:
            extra = " ".join(sorted(requested - allowed))
            raise InvalidInput(f"Scope not allowed for this account: {extra}", code="invalid_scope")
        return requested

    def _refuse_if_limited(self, keys: list[str]) -> int:
        """RateLimited if any key is over its limit; else the failures counted on the first
        (the account)."""
        now = self._clock()
        counts = []
        for key, limit in zip(keys, self._limit_per_key(), strict=False):
            count, started = self._rate_limits.peek(key, self._limits.window_seconds, now)
            if count >= limit:
                raise RateLimited(self._retry_after(started, now))
            counts.append(count)
        return counts[0]

    def _verify(self, user: User | None, password: str) -> bool:
        if user is None or user.password_hash == NO_PASSWORD:
            self._hasher.verify_dummy(password)
            return False
        return self._hasher.verify(user.password_hash, password)

    def _fail(self, keys: list[str]) -> NoReturn:
        for key in keys:
            self._rate_limits.hit(key, self._limits.window_seconds, self._clock())
        raise InvalidCredentials()

    def _limit_per_key(self) -> tuple[int, int]:
        return self._limits.per_account, self._limits.per_address

    def _retry_after(self, started: datetime, now: datetime) -> int:
        ends = started + timedelta(seconds=self._limits.window_seconds)
        return max(1, math.ceil((ends - now).total_seconds()))

    def _new_refresh_token(self, session_id: str, now: datetime) -> tuple[str, RefreshToken]:
        secret = secrets.token_urlsafe(32)
        token = RefreshToken(
            id=new_id(),
            session_id=session_id,
            secret_hash=_digest(secret),
            created_at=now,
            expires_at=now + self._refresh_ttl,
            used_at=None,
        )
        return secret, token

    def _pair(
        self, user: User, session: Session, token: RefreshToken, secret: str, now: datetime
    ) -> TokenPair:
        access = self._tokens.issue(user, session.scopes, now, session_id=session.id)
        return TokenPair(access, f"{token.id}.{secret}", session.scopes)


def _username_from(claims: dict[str, Any]) -> str:
    for claim in ("preferred_username", "cognito:username", "email", "nickname", "sub"):
        value = claims.get(claim)
        if isinstance(value, str):
            cleaned = re.sub(r"[^A-Za-z0-9_.@+-]", "", value).lstrip("_.@+-")[:64]
            if USERNAME_PATTERN.fullmatch(cleaned):
                return cleaned
    return "user"


def _invalid_grant(message: str) -> Unauthenticated:
    return Unauthenticated(message, code="invalid_grant")


def _digest(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()
