"""Accounts: sign-up, look-up, changes and removal, with who may do each."""

import hashlib
import re
import secrets
from collections.abc import Callable
from typing import Any, Protocol

from nimbus.domain.audit import AuditKind
from nimbus.domain.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
)
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
from nimbus.security.password_policy import DEFAULT_POLICY, PasswordPolicy
from nimbus.security.passwords import PasswordHasher
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.services.throttle import UNKNOWN_ADDRESS, Limit, Throttle
from nimbus.storage.base import SessionStore, UserStore

# Wrong current passwords per account (when changing a password or email), per 15 minutes.
PASSWORD_CHECKS = Limit("password-check:account", 10, 15 * 60)


class AccountNotices(Protocol):
    """The mails account changes send (nimbus.services.accounts.AccountService)."""

    def welcome(self, user: User) -> None: ...

    def email_taken(self, owner: User, client: str | None) -> None: ...

    def email_changed(self, before: User, after: User) -> None: ...


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
        notices: AccountNotices | None = None,
        require_verified: bool = False,
        policy: PasswordPolicy = DEFAULT_POLICY,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._sessions = sessions
        self._hasher = hasher
        self._audit = audit
        self._throttle = throttle
        self._signup_limit = signup_limit
        self._signup_open = signup_open
        self._notices = notices
        self._require_verified = require_verified
        self.policy = policy  # public: every service that sets a password checks it here
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
        (each costs a hash). With verified emails required, an email is required too, and a
        taken one answers as a new sign-up does (see _pretend_sign_up)."""
        self._admit_sign_up(client)
        if self._require_verified and email is None:
            raise InvalidInput(
                "Give an email to sign up: it must be verified", code="email_required"
            )
        try:
            user = self._create(username=username, password=password, email=email, name=name)
        except Conflict:
            owner = self._email_owner(email)
            if owner is None:
                raise
            return self._pretend_sign_up(owner, username, password, email, name, client)
        self._signed_up(user, client)
        return user

    def _email_owner(self, email: str | None) -> User | None:
        """The account whose email clashed with a sign-up's, when a sign-up must not say so."""
        if not self._require_verified or email is None:
            return None
        return self._store.find_by_email(email)

    def _pretend_sign_up(
        self,
        owner: User,
        username: str,
        password: str,
        email: str | None,
        name: str | None,
        client: str | None,
    ) -> User:
        """The answer a new sign-up gets, for an email that has an account: the same work
        (a hash, a mail, to its owner instead), and an account that is stored nowhere."""
        self.policy.check(password, username=username, email=email)
        self._hasher.hash(password)
        now = self._clock()
        if self._notices is not None:
            self._notices.email_taken(owner, client)
        return User(
            id=new_id(),
            username=username,
            email=email,
            name=name,
            role=Role.USER,
            password_hash=NO_PASSWORD,
            created_at=now,
            updated_at=now,
            last_login=None,
            version=1,
        )

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
                owner = self._email_owner(email)
                if owner is not None:
                    return self._pretend_sign_up(owner, username, password, email, name, client)
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
        if user.email is not None and self._notices is not None:
            self._notices.welcome(user)

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
        # The operator vouches for the email they type: it needs no link followed.
        user = self._create(
            username=username,
            password=password,
            email=email,
            name=name,
            role=role,
            email_verified=email is not None,
        )
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
        email_verified: bool = False,
    ) -> User:
        self.refuse_taken(username, email)
        self.policy.check(password, username=username, email=email)
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
            email_verified=email_verified,
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
        if not isinstance(password, Unset):
            new_email = current.email if isinstance(email, Unset) else email
            self.policy.check(password, username=current.username, email=new_email)
        email_changed = not isinstance(email, Unset) and email != current.email
        changes = UserChanges(
            email=email,
            name=name,
            role=role,
            password_hash=UNSET if isinstance(password, Unset) else self._hasher.hash(password),
            # A new email is unverified until its link is followed.
            email_verified=False if email_changed else UNSET,
        )
        now = self._clock()
        user = self._store.update(user_id, changes, expected_version=expected_version, at=now)
        if not isinstance(password, Unset) or not isinstance(role, Unset):
            self._sessions.revoke_all(user_id, now)
        self._record_changes(
            actor, current, user, password_set=not isinstance(password, Unset), client=client
        )
        if email_changed and self._notices is not None:
            self._notices.email_changed(current, user)
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

    def delete(
        self,
        actor: Principal,
        user_id: str,
        client: str | None = None,
        *,
        current_password: str | None = None,
    ) -> None:
        """Remove an account with its todos and sessions; never the last administrator. Your
        own account needs `current_password` too, as a new password does."""
        _self_or_admin(actor, user_id)
        if actor.user_id == user_id:
            current = self._store.get(user_id)
            if current.password_hash != NO_PASSWORD:  # an OIDC account has none to send
                self._check_current_password(current, current_password)
        self._keep_an_admin(user_id)
        self._store.delete(user_id)
        self._audit.record(
            AuditKind.USER_DELETED, actor=actor.user_id, subject=user_id, client=client
        )

    def _check_current_password(self, user: User, current_password: str | None) -> None:
        if current_password is None:
            raise PermissionDenied(
                "Send your current password to change your password or email, or to delete"
                " your account",
                code="current_password_required",
            )
        check_current_password(self._throttle, self._hasher, user, current_password)

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
        self.refuse_last_admin(self._store.get(user_id))

    def refuse_last_admin(self, user: User) -> None:
        """Conflict if `user` is an administrator and no other enabled one exists: a disabled
        administrator administers nothing, so it does not count."""
        if user.role is Role.ADMIN and not self._store.other_admin_exists(user.id):
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

    def set_disabled(
        self,
        actor: Principal | None,
        user_id: str,
        disabled: bool,
        *,
        client: str | None = None,
        expected_version: int | None = None,
    ) -> User:
        """Disable an account (no login, no refresh, its sessions ended at once, its data
        kept) or enable it again: an administrator's call, or the operator's (`actor` None,
        the command line). Nobody disables themself, nor the last enabled administrator. A
        change is an audit event, from `client`'s address; asking for the state the account
        is in already changes nothing and records nothing."""
        if actor is not None:
            # Decided before any look-up, as _self_or_admin is.
            if not actor.is_admin:
                raise PermissionDenied(
                    "Only an administrator can disable or enable an account", code="admin_only"
                )
            if disabled and actor.user_id == user_id:
                raise PermissionDenied(
                    "You cannot disable your own account", code="self_disable_forbidden"
                )
        current = self._store.get(user_id)
        if current.disabled == disabled:
            if expected_version is not None and expected_version != current.version:
                raise PreconditionFailed()
            return current
        if disabled:
            self.refuse_last_admin(current)
        now = self._clock()
        user = self._store.update(
            user_id,
            UserChanges(disabled_at=now if disabled else None),
            expected_version=expected_version,
            at=now,
        )
        if disabled:
            self._sessions.revoke_all(user_id, now)
        self._audit.record(
            AuditKind.USER_DISABLED if disabled else AuditKind.USER_ENABLED,
            actor=actor.user_id if actor is not None else None,
            subject=user_id,
            client=client,
        )
        return user

    def set_password(self, username: str, password: str) -> User:
        """Set an account's password, as the operator (the command line): under the password
        policy, as every password a person chooses, and ending the account's sessions."""
        current = self.get_by_username(username)
        self.policy.check(password, username=current.username, email=current.email)
        now = self._clock()
        user = self._store.update(
            current.id,
            UserChanges(password_hash=self._hasher.hash(password)),
            expected_version=None,
            at=now,
        )
        self._sessions.revoke_all(user.id, now)
        self._audit.record(AuditKind.PASSWORD_CHANGED, subject=user.id)
        return user

    def delete_by_operator(self, user_id: str) -> None:
        """Remove an account with everything it owns, as the operator (the command line);
        never the last enabled administrator."""
        self._keep_an_admin(user_id)
        self._store.delete(user_id)
        self._audit.record(AuditKind.USER_DELETED, subject=user_id)

    def ensure_admin(
        self, username: str, password: Callable[[], str], *, email: str | None = None
    ) -> tuple[User, bool]:
        """The administrator the environment names (NIMBUS_FIRST_ADMIN_*): made as `create`
        makes one, unless an account has this username, which is then left as it is (its
        password and role are its own). The account, and whether this call made it.
        `password` is called only to make it (it may read SSM). Two processes starting
        together make it once: the second one's Conflict finds the first one's account."""
        existing = self._store.find_by_username(username)
        if existing is not None:
            return existing, False
        try:
            made = self.create(username=username, password=password(), email=email, role=Role.ADMIN)
        except Conflict:
            existing = self._store.find_by_username(username)
            if existing is not None:
                return existing, False  # made just now by another process
            raise  # the email is another account's, or the username is someone's email
        return made, True


def _self_or_admin(actor: Principal, user_id: str) -> None:
    # Decided before any look-up, so the answer never tells whether another id exists.
    if actor.user_id != user_id and not actor.is_admin:
        raise PermissionDenied("You can only see and change your own account")


def _username_from(claims: dict[str, Any]) -> str:
    # "username": another nimbus's access token, when that nimbus is the provider.
    names = ("preferred_username", "cognito:username", "username", "email", "nickname", "sub")
    for claim in names:
        value = claims.get(claim)
        if isinstance(value, str):
            cleaned = re.sub(r"[^A-Za-z0-9_.@+-]", "", value).lstrip("_.@+-")[:64]
            if USERNAME_PATTERN.fullmatch(cleaned):
                return cleaned
    return "user"


def check_current_password(
    throttle: Throttle, hasher: PasswordHasher, user: User, password: str
) -> None:
    """PermissionDenied unless `password` is the account's own: the check a signed-in change
    to the account makes, as an access token alone must not be enough. Counted like failed
    logins, or a stolen token would be a way around their limits."""
    (key,) = throttle.take((PASSWORD_CHECKS, user.id))
    if user.password_hash == NO_PASSWORD or not hasher.verify(user.password_hash, password):
        raise PermissionDenied("The current password is not right", code="current_password_invalid")
    throttle.clear(key)
