"""Accounts: sign-up, look-up, changes and removal, with who may do each."""

import hashlib
import re
import secrets
from typing import Any

from nimbus.domain.audit import AuditKind
from nimbus.domain.errors import Conflict, NotFound, PermissionDenied
from nimbus.domain.ids import new_id
from nimbus.domain.paging import Page
from nimbus.domain.principals import Principal
from nimbus.domain.users import (
    NO_PASSWORD,
    UNSET,
    USERNAME_PATTERN,
    Role,
    Unset,
    User,
    UserChanges,
    login_name,
    username_from_email,
)
from nimbus.security.passwords import PasswordHasher
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.services.throttle import UNKNOWN_ADDRESS, Limit, Throttle
from nimbus.storage.base import SessionStore, UserStore

# Wrong current passwords per account (when changing a password or email), per 15 minutes.
PASSWORD_CHECKS = Limit("password-check:account", 10, 15 * 60)


class UserService:
    def __init__(
        self,
        store: UserStore,
        sessions: SessionStore,
        hasher: PasswordHasher,
        *,
        audit: AuditTrail,
        throttle: Throttle,
        signup_limit: Limit,
        signup_open: bool = True,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._hasher = hasher
        self._audit = audit
        self._throttle = throttle
        self._signup_limit = signup_limit
        self._signup_open = signup_open
        self._clock = clock

    def sign_up(
        self,
        *,
        client: str | None,
        username: str,
        password: str,
        email: str | None = None,
        name: str | None = None,
    ) -> User:
        """Public sign-up: `create`, when sign-up is open and within the address's allowance
        (each costs a hash)."""
        self._admit_sign_up(client)
        user = self._create(username=username, password=password, email=email, name=name)
        self._signed_up(user, client)
        return user

    def sign_up_with_email(
        self, *, client: str | None, email: str, password: str, name: str | None = None
    ) -> User:
        """Sign-up with an email and no username (seed 001's): the username is made from the
        email's local part, since the email itself would be public as an author's name."""
        self._admit_sign_up(client)
        base = username_from_email(email)
        for attempt in range(3):
            username = base if attempt == 0 else f"{base}-{secrets.token_hex(3)}"
            try:
                # _create() refuses a taken name before it hashes anything.
                user = self._create(username=username, password=password, email=email, name=name)
            except Conflict:
                self.refuse_taken(None, email)  # the email's clash ends it; a name's tries another
                continue
            self._signed_up(user, client)
            return user
        raise Conflict("No username could be made from that email; sign up with one")

    def _signed_up(self, user: User, client: str | None) -> None:
        self._audit.record(
            AuditKind.SIGNUP,
            actor=user.id,
            subject=user.id,
            client=client,
            detail={"username": user.username},
        )

    def _admit_sign_up(self, client: str | None) -> None:
        if not self._signup_open:
            raise PermissionDenied(
                "Sign-up is closed; ask an administrator for an account", code="signup_disabled"
            )
        self._throttle.take((self._signup_limit, client or UNKNOWN_ADDRESS))

    @read_only
    def id_for_email(self, actor: Principal, email: str) -> str:
        """The id of the account with this email: your own, or any for an administrator.
        Another's email is refused before any look-up, so the answer never tells whether it
        has an account."""
        email = login_name(email)
        if not actor.is_admin:
            own = self._store.get(actor.user_id)
            if own.email != email:
                raise PermissionDenied("You can only see and change your own account")
            return own.id
        user = self._store.find_by_email(email)
        if user is None:
            raise NotFound("No user has that email")
        return user.id

    def create(
        self,
        *,
        username: str,
        password: str,
        email: str | None = None,
        name: str | None = None,
        role: Role = Role.USER,
    ) -> User:
        """Create an account, as the operator (the command line); Conflict if the username or
        email is taken, or would name another account at login (a username equal to someone's
        email, or the reverse)."""
        user = self._create(username=username, password=password, email=email, name=name, role=role)
        self._audit.record(
            AuditKind.USER_CREATED,
            subject=user.id,
            detail={"username": user.username, "role": user.role.value},
        )
        return user

    def _create(
        self,
        *,
        username: str,
        password: str,
        email: str | None = None,
        name: str | None = None,
        role: Role = Role.USER,
    ) -> User:
        self.refuse_taken(username, email)
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

    def account_for(
        self, subject: str, claims: dict[str, Any], *, client: str | None = None
    ) -> User:
        """The local account of an OIDC provider's user ("issuer|sub"), made the first time
        its token is seen (security.authenticator.ExternalAccounts)."""
        existing = self._store.find_by_external_subject(subject)
        if existing is not None:
            return existing
        now = self._clock()
        name = claims.get("name")
        base = _username_from(claims)
        suffix = hashlib.sha256(subject.encode()).hexdigest()[:8]
        for username in (base, f"{base[:55]}-{suffix}"):
            if "@" in username and self._store.find_by_email(username) is not None:
                continue  # a name that logs in to another account (its email) is not free
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
                self._store.add(user)
            except Conflict:
                # Taken username, or a concurrent request enrolled this subject first.
                enrolled = self._store.find_by_external_subject(subject)
                if enrolled is not None:
                    return enrolled
                continue
            self._audit.record(
                AuditKind.OIDC_ENROLLED,
                actor=user.id,
                subject=user.id,
                client=client,
                detail={"username": user.username, "issuer": subject.rsplit("|", 1)[0]},
            )
            return user
        raise Conflict("Cannot choose a username for this identity")

    @read_only
    def get(self, actor: Principal, user_id: str) -> User:
        _self_or_admin(actor, user_id)
        return self._store.get(user_id)

    @read_only
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
        current_password: str | None = None,
        expected_version: int | None = None,
        client: str | None = None,
    ) -> User:
        """Change an account. Your own password or email needs `current_password` too (a
        stolen token alone must not take an account over). A new password or role ends the
        account's sessions. The last administrator stays one. Each change of password,
        email, name or role is an audit event, from `client`'s address."""
        _self_or_admin(actor, user_id)
        if not isinstance(role, Unset) and not actor.is_admin:
            raise PermissionDenied(
                "Only an administrator can change a role", code="role_change_forbidden"
            )
        current = self._store.get(user_id)  # to check the password, and to tell what changed
        sensitive = not isinstance(password, Unset) or (
            not isinstance(email, Unset) and email != current.email
        )
        if actor.user_id == user_id and sensitive:
            self._check_current_password(current, current_password)
        if not isinstance(email, Unset) and email is not None:
            self.refuse_taken(None, email, user_id)
        if role is Role.USER:
            self._keep_an_admin(user_id)
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
        self._record_changes(
            actor, current, user, password_set=not isinstance(password, Unset), client=client
        )
        return user

    def _record_changes(
        self, actor: Principal, before: User, after: User, *, password_set: bool, client: str | None
    ) -> None:
        changed: list[tuple[AuditKind, dict[str, str]]] = []
        if password_set:
            changed.append((AuditKind.PASSWORD_CHANGED, {}))
        if after.email != before.email:
            changed.append((AuditKind.EMAIL_CHANGED, {}))
        if after.name != before.name:
            changed.append((AuditKind.NAME_CHANGED, {}))
        if after.role is not before.role:
            detail = {"role": after.role.value, "previous": before.role.value}
            changed.append((AuditKind.ROLE_CHANGED, detail))
        for kind, detail in changed:
            self._audit.record(
                kind, actor=actor.user_id, subject=after.id, client=client, detail=detail
            )

    def delete(self, actor: Principal, user_id: str, client: str | None = None) -> None:
        """Remove an account with its todos and sessions; never the last administrator."""
        _self_or_admin(actor, user_id)
        self._keep_an_admin(user_id)
        self._store.delete(user_id)
        self._audit.record(
            AuditKind.USER_DELETED, actor=actor.user_id, subject=user_id, client=client
        )

    def _check_current_password(self, user: User, current_password: str | None) -> None:
        if current_password is None:
            raise PermissionDenied(
                "Send your current password to change your password or email",
                code="current_password_required",
            )
        # Counted like failed logins, or a stolen token would be a way around their limits.
        (key,) = self._throttle.take((PASSWORD_CHECKS, user.id))
        if user.password_hash == NO_PASSWORD or not self._hasher.verify(
            user.password_hash, current_password
        ):
            raise PermissionDenied(
                "The current password is not right", code="current_password_invalid"
            )
        self._throttle.clear(key)

    def refuse_taken(
        self, username: str | None, email: str | None, user_id: str | None = None
    ) -> None:
        """Conflict if another account (than `user_id`) has this username or email, or would
        be named by it at login (a username equal to someone's email, or the reverse)."""
        if username is not None:
            other = self._store.find_by_username(username)
            if other is None and "@" in username:
                other = self._store.find_by_email(username)
            if other is not None and other.id != user_id:
                raise Conflict("That username is taken")
        if email is not None:
            other = self._store.find_by_email(email) or self._store.find_by_username(email)
            if other is not None and other.id != user_id:
                raise Conflict("That email is already registered")

    def _keep_an_admin(self, user_id: str) -> None:
        user = self._store.get(user_id)
        if user.role is Role.ADMIN and not self._store.other_admin_exists(user_id):
            raise Conflict(
                "This is the last administrator; make another one first", code="last_admin"
            )

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


def _username_from(claims: dict[str, Any]) -> str:
    for claim in ("preferred_username", "cognito:username", "email", "nickname", "sub"):
        value = claims.get(claim)
        if isinstance(value, str):
            cleaned = re.sub(r"[^A-Za-z0-9_.@+-]", "", value).lstrip("_.@+-")[:64]
            if USERNAME_PATTERN.fullmatch(cleaned):
                return cleaned
    return "user"
