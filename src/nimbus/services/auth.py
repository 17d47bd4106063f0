"""Login, token refresh and logout, and the check every authenticated request passes."""

import hashlib
import hmac
import secrets
from dataclasses import field, replace
from datetime import datetime, timedelta
from typing import Any

from nimbus import metrics
from nimbus.domain.audit import AuditKind
from nimbus.domain.errors import (
    AccountDisabled,
    InvalidCredentials,
    InvalidInput,
    NotFound,
    PermissionDenied,
    RateLimited,
    SecondFactorRequired,
    Unauthenticated,
)
from nimbus.domain.ids import new_id
from nimbus.domain.principals import Claimant, Principal, scopes_for
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import (
    NO_PASSWORD,
    User,
    UserChanges,
    login_name,
)
from nimbus.security.authenticator import Authenticator
from nimbus.security.devices import DeviceCookies
from nimbus.security.macs import Mac
from nimbus.security.passwords import PasswordHasher
from nimbus.security.tokens import AccessTokens, IssuedToken
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.mfa import SecondFactors
from nimbus.services.passkeys import Ceremony, PasskeyAnswer, Passkeys
from nimbus.services.reads import read_only
from nimbus.services.throttle import UNKNOWN_ADDRESS, Limit, Throttle
from nimbus.storage.base import SessionStore, UserStore
from nimbus.values import frozen

USER_AGENT_MAX = 256  # characters of a User-Agent kept with a session


@frozen
class LoginLimits:
    """Failed logins allowed per window (see docs/security.md, "Login throttling").

    A client that has logged in to an account before (its device cookie) has an allowance of
    its own, `per_client`; every other client gets `per_client` per address, and all of them
    together `per_account`. So a stranger who knows a username can exhaust only the strangers'
    allowance, never the owner's. `per_address` bounds one address's guesses over all accounts.
    """

    per_client: int = 10
    per_account: int = 100
    per_address: int = 100
    window_seconds: int = 15 * 60
    # Refresh tokens are 256 random bits, so this is no guessing defence: it bounds the
    # store writes one address can cause, per 5 minutes.
    refreshes_per_address: int = 150

    @property
    def client(self) -> Limit:
        return Limit("login:client", self.per_client, self.window_seconds)

    @property
    def device(self) -> Limit:
        return Limit("login:device", self.per_client, self.window_seconds)

    @property
    def account(self) -> Limit:
        return Limit("login:account", self.per_account, self.window_seconds)

    @property
    def address(self) -> Limit:
        return Limit("login:address", self.per_address, self.window_seconds)

    @property
    def refresh(self) -> Limit:
        return Limit("refresh:address", self.refreshes_per_address, 5 * 60)


@frozen
class TokenPair:
    access: IssuedToken
    refresh_token: str = field(repr=False)
    scopes: frozenset[str]
    device: str | None = None  # a device cookie for the client, after a login


class AuthService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        throttle: Throttle,
        hasher: PasswordHasher,
        tokens: AccessTokens,
        authenticator: Authenticator,
        devices: DeviceCookies,
        rotation: Mac,
        audit: AuditTrail,
        refresh_ttl: timedelta,
        reuse_grace: timedelta = timedelta(seconds=10),
        limits: LoginLimits = LoginLimits(),
        require_verified: bool = False,
        second_factors: SecondFactors | None = None,
        passkeys: Passkeys | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._passkeys = passkeys
        self._authenticator = authenticator
        self._second_factors = second_factors
        self._users = users
        self._sessions = sessions
        self._throttle = throttle
        self._hasher = hasher
        self._tokens = tokens
        self._devices = devices
        self._rotation = rotation
        self._audit = audit
        self._refresh_ttl = refresh_ttl
        self._reuse_grace = reuse_grace
        self._limits = limits
        self._require_verified = require_verified
        self._clock = clock

    def login(
        self,
        *,
        name: str,
        password: str,
        client: str | None,
        device: str | None = None,
        scopes: frozenset[str] | None = None,
        user_agent: str | None = None,
    ) -> TokenPair:
        """Tokens for valid credentials; one InvalidCredentials for an unknown account and a
        wrong password alike. A disabled account, or (when verified emails are required) an
        unverified one, is told so only to whoever sent its password. An account with a
        second factor gets SecondFactorRequired, to go on at second_step.

        `name` is a username or an email, as typed. Unknown accounts and wrong passwords cost
        the same argon2 work and count against the same limits, so neither the answer nor its
        timing tells whether an account exists. The attempt is counted before the hash runs.
        """
        key = login_name(name)
        user = self.find_account(key)
        account = user.id if user is not None else f"name:{key}"
        address = client or UNKNOWN_ADDRESS
        now = self._clock()
        device_id = self._devices.device_of(device, user.id, now) if user is not None else None
        limits = self._limits
        subject = user.id if user is not None else None
        try:
            if device_id is not None:
                counts = self._throttle.take((limits.device, f"{account}|{device_id}"))
                address_count: tuple[str, ...] = ()
            else:
                client_key, account_key, address_key = self._throttle.take(
                    (limits.client, f"{account}|{address}"),
                    (limits.account, account),
                    (limits.address, address),
                )
                counts, address_count = (client_key, account_key), (address_key,)
        except RateLimited:
            metrics.login("throttled")
            self._audit.record(AuditKind.LOGIN_THROTTLED, subject=subject, client=client)
            raise
        if user is None or not self._verify(user, password):
            # Recorded for an unknown account too (with no subject, and never the name typed,
            # which may be a password typed in the wrong field): the same work either way.
            metrics.login("bad_credentials")
            self._audit.record(AuditKind.LOGIN_FAILED, subject=subject, client=client)
            raise InvalidCredentials()
        # A success is no failure: the account's counts start again, the address's loses one.
        for counted in counts:
            self._throttle.clear(counted)
        for counted in address_count:
            self._throttle.give_back(counted)
        # Told only to whoever knows the password: a wrong one got InvalidCredentials above.
        self._admit(user, client)
        granted = self._grant(user, scopes)
        upgraded = (
            self._hasher.hash(password) if self._hasher.needs_rehash(user.password_hash) else None
        )
        factors = self._second_factors
        methods = factors.methods(user.id) if factors is not None else []
        if factors is not None and methods:
            if upgraded is not None:
                # Kept now, while the password is at hand; the login is recorded at its end.
                changes = UserChanges(password_hash=upgraded)
                user = self._users.update(user.id, changes, expected_version=None, at=now)
            raise SecondFactorRequired(
                factors.challenge(user, scopes),
                int(factors.step_ttl.total_seconds()),
                tuple(methods),
            )
        self._users.record_login(user.id, now, upgraded)
        return self._start(user, granted, client, device_id, user_agent, now)

    def second_step(
        self,
        *,
        mfa_token: str,
        code: str,
        client: str | None,
        device: str | None = None,
        user_agent: str | None = None,
    ) -> TokenPair:
        """Tokens for a login held by an MFA step token, with a code from its second factor
        (a TOTP code, or a recovery code)."""
        if self._second_factors is None:
            raise Unauthenticated("Two-step login is not available", code="invalid_mfa_token")
        factors = self._second_factors
        user, claims = factors.pending_step(mfa_token)
        self._admit(user, client)
        passed = factors.second_step(user, claims, code, client)
        now = self._clock()
        granted = self._grant(user, passed.scopes)
        device_id = self._devices.device_of(device, user.id, now)
        self._users.record_login(user.id, now, None)
        return self._start(user, granted, client, device_id, user_agent, now)

    def passkey_login(
        self,
        *,
        challenge_token: str,
        credential: dict[str, Any],
        client: str | None,
        device: str | None = None,
        user_agent: str | None = None,
    ) -> TokenPair:
        """Tokens for a passkey alone: a discoverable credential with user verification is
        two factors (something held, and a PIN or biometric), so no second step follows."""
        if self._passkeys is None:
            raise Unauthenticated("Passkeys are not available", code="invalid_passkey")
        answer = PasskeyAnswer(challenge_token, credential)
        user = self._passkeys.login(answer, client, lambda owner: self._admit(owner, client))
        now = self._clock()
        granted = self._grant(user, None)
        device_id = self._devices.device_of(device, user.id, now)
        self._users.record_login(user.id, now, None)
        return self._start(user, granted, client, device_id, user_agent, now, method="passkey")

    def passkey_step_options(self, mfa_token: str) -> Ceremony:
        """A passkey challenge for the second step of the login an MFA step token holds."""
        if self._second_factors is None or self._passkeys is None:
            raise Unauthenticated("Two-step login is not available", code="invalid_mfa_token")
        user, _ = self._second_factors.pending_step(mfa_token)
        return self._passkeys.second_step_options(user)

    def passkey_second_step(
        self,
        *,
        mfa_token: str,
        challenge_token: str,
        credential: dict[str, Any],
        client: str | None,
        device: str | None = None,
        user_agent: str | None = None,
    ) -> TokenPair:
        """Tokens for a login held by an MFA step token, with one of its account's passkeys
        as the second factor."""
        if self._second_factors is None or self._passkeys is None:
            raise Unauthenticated("Two-step login is not available", code="invalid_mfa_token")
        factors = self._second_factors
        user, claims = factors.pending_step(mfa_token)
        self._admit(user, client)
        answer = PasskeyAnswer(challenge_token, credential)
        self._passkeys.second_step(user, answer, client, lambda _: factors.spend_step(claims))
        passed = factors.passed(user, claims)
        now = self._clock()
        granted = self._grant(user, passed.scopes)
        device_id = self._devices.device_of(device, user.id, now)
        self._users.record_login(user.id, now, None)
        return self._start(user, granted, client, device_id, user_agent, now, method="passkey")

    def _admit(self, user: User, client: str | None) -> None:
        """The checks every login makes once its credentials passed, whichever they were: a
        disabled account, or (when verified emails are required) an unverified one, is
        refused, and told so, as only the account's holder gets this far."""
        if user.disabled:
            self._audit.record(
                AuditKind.LOGIN_FAILED,
                subject=user.id,
                client=client,
                detail={"reason": AccountDisabled.code},
            )
            raise AccountDisabled()
        if self._require_verified and user.email is not None and not user.email_verified:
            raise PermissionDenied(
                "Verify your email first: follow the link mailed to you, or ask for a new one",
                code="email_not_verified",
            )

    def _start(
        self,
        user: User,
        granted: frozenset[str],
        client: str | None,
        device_id: str | None,
        user_agent: str | None,
        now: datetime,
        method: str | None = None,
    ) -> TokenPair:
        """A new session for a login that passed every check."""
        session = Session(
            id=new_id(),
            user_id=user.id,
            scopes=granted,
            created_at=now,
            revoked_at=None,
            user_agent=user_agent[:USER_AGENT_MAX] if user_agent else None,
            address=client,
        )
        secret, token = self._new_refresh_token(session.id, now)
        self._sessions.start(session, token)
        pair = self._pair(user, session, token, secret)
        metrics.login("ok")
        self._audit.record(
            AuditKind.LOGIN_OK,
            actor=user.id,
            subject=user.id,
            client=client,
            detail={"session": session.id} | ({"method": method} if method else {}),
        )
        return replace(pair, device=self._devices.issue(user.id, now, device_id))

    def find_account(self, name: str) -> User | None:
        """The account a login name (login_name's form) names: its username, else its email.
        Sign-up keeps any name from naming two accounts."""
        user = self._users.find_by_username(name)
        if user is None and "@" in name:
            # OAuth2 clients have only a "username" field; people type their email there.
            user = self._users.find_by_email(name)
        return user

    def refresh(self, refresh_token: str, client: str | None = None) -> TokenPair:
        """Rotate a refresh token. A token used twice is a stolen copy: end its session,
        unless it follows the first use within `reuse_grace`: two uses that close together are
        one client's duplicate (a double click, two tabs), and the second gets the same pair."""
        self._throttle.take((self._limits.refresh, client or UNKNOWN_ADDRESS))
        token_id, _, secret = refresh_token.partition(".")
        found = self._sessions.find_refresh(token_id) if token_id and secret else None
        if found is None or not hmac.compare_digest(found[0].secret_hash, _digest(secret)):
            raise _invalid_grant("Invalid refresh token")
        token, session = found
        now = self._clock()
        if session.revoked_at is not None:
            raise _invalid_grant("The session has ended")
        user = self._users.get(session.user_id)
        if user.disabled:
            raise _invalid_grant("The account is disabled")
        child_secret, child = self._child(token, secret, now)
        if token.used_at is None:
            if token.expires_at <= now:
                raise _invalid_grant("Refresh token expired")
            if self._sessions.rotate(token.id, child, now):
                return self._pair(user, session, child, child_secret)
        # Used already, or just now by a request running beside this one.
        duplicate = self._duplicate(token, child.id, now)
        if duplicate is None:
            self._sessions.revoke(session.id, now)
            self._audit.record(
                AuditKind.REFRESH_REUSE,
                subject=session.user_id,
                client=client,
                detail={"session": session.id},
            )
            raise _invalid_grant("Refresh token reused; the session has been ended")
        return self._pair(user, session, duplicate, child_secret)

    def _child(self, token: RefreshToken, secret: str, now: datetime) -> tuple[str, RefreshToken]:
        """The token that replaces `token`: derived from it under the service's key, so that
        a duplicate request derives the same one, and only the service can."""
        child_secret = self._rotation.sign(f"secret:{token.id}.{secret}")
        child = RefreshToken(
            id=self._rotation.uuid(f"id:{token.id}"),
            session_id=token.session_id,
            secret_hash=_digest(child_secret),
            created_at=now,
            expires_at=now + self._refresh_ttl,
            used_at=None,
        )
        return child_secret, child

    def _duplicate(self, token: RefreshToken, child_id: str, now: datetime) -> RefreshToken | None:
        """The replacement stored for `token`, if this use is a duplicate within the grace."""
        found = self._sessions.find_refresh(token.id)
        used_at = found[0].used_at if found else None
        if used_at is None or now - used_at > self._reuse_grace:
            return None
        child = self._sessions.find_refresh(child_id)
        if child is None or child[0].used_at is not None or child[1].revoked_at is not None:
            return None
        return child[0]

    def logout(self, principal: Principal, client: str | None = None) -> None:
        now = self._clock()
        if principal.session_id is not None:
            self._sessions.revoke(principal.session_id, now)
        self._sessions.revoke_access_token(principal.token_id, principal.expires_at, now)
        self._audit.record(
            AuditKind.LOGOUT,
            actor=principal.user_id,
            subject=principal.user_id,
            client=client,
            detail={"session": principal.session_id} if principal.session_id else None,
        )

    @read_only
    def sessions_of(self, principal: Principal) -> list[Session]:
        """The principal's live sessions, most recently used first: a session whose refresh
        token has expired unused is over, though nothing revoked it."""
        oldest = self._clock() - self._refresh_ttl
        return [
            session
            for session in self._sessions.list_active(principal.user_id)
            if (session.last_used_at or session.created_at) > oldest
        ]

    def end_session(self, principal: Principal, session_id: str, client: str | None) -> None:
        """End one of the principal's own sessions; NotFound for any other id."""
        if session_id not in {s.id for s in self._sessions.list_active(principal.user_id)}:
            raise NotFound("You have no session with that id")
        self._sessions.revoke(session_id, self._clock())
        self._audit.record(
            AuditKind.SESSION_ENDED,
            actor=principal.user_id,
            subject=principal.user_id,
            client=client,
            detail={"session": session_id},
        )

    def end_other_sessions(self, principal: Principal, client: str | None) -> None:
        """End every session of the principal's but the one its token is from."""
        self._sessions.revoke_all(principal.user_id, self._clock(), keep=principal.session_id)
        self._audit.record(
            AuditKind.SESSION_ENDED,
            actor=principal.user_id,
            subject=principal.user_id,
            client=client,
            detail={"session": "others"},
        )

    @read_only
    def authenticate(
        self, token: str, verified: dict[str, Any] | None = None, client: str | None = None
    ) -> Principal:
        """The principal a bearer token names, if its session is still live. `verified` holds
        the token's claims when the API Gateway authorizer has already checked its signature
        (Authenticator.principal); `client` is the address an OIDC enrolment is recorded
        from."""
        principal = self._authenticator.principal(token, verified, client=client)
        if not self._sessions.is_active(principal.session_id, principal.token_id, self._clock()):
            raise Unauthenticated()
        return principal

    def claimant(
        self, token: str, verified: dict[str, Any] | None = None, client: str | None = None
    ) -> Claimant:
        """The principal a bearer token names, its session still to be checked: by the store
        call that serves it (Claimant). No store call when the token is nimbus's own."""
        return Claimant(self._authenticator.principal(token, verified, client=client))

    @property
    def claims_may_wait(self) -> bool:
        """Whether `claimant` may wait (on an identity provider), and so needs a thread."""
        return self._authenticator.may_wait

    def _grant(self, user: User, requested: frozenset[str] | None) -> frozenset[str]:
        allowed = scopes_for(user.role)
        if requested is None:
            return allowed
        if not requested <= allowed:
            extra = " ".join(sorted(requested - allowed))
            raise InvalidInput(f"Scope not allowed for this account: {extra}", code="invalid_scope")
        return requested

    def _verify(self, user: User | None, password: str) -> bool:
        if user is None or user.password_hash == NO_PASSWORD:
            self._hasher.verify_dummy(password)
            return False
        return self._hasher.verify(user.password_hash, password)

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

    def _pair(self, user: User, session: Session, token: RefreshToken, secret: str) -> TokenPair:
        # Issued as of the refresh token's creation, with a jti derived from it: a duplicate
        # refresh gets this very access token too.
        access = self._tokens.issue(
            user,
            session.scopes,
            token.created_at,
            session_id=session.id,
            token_id=self._rotation.uuid(f"jti:{token.id}"),
        )
        return TokenPair(access, f"{token.id}.{secret}", session.scopes)


def _invalid_grant(message: str) -> Unauthenticated:
    return Unauthenticated(message, code="invalid_grant")


def _digest(secret: str) -> str:
    # The secret is 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()
