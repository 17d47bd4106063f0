"""Getting back into an account and proving an email: the mailed links, and the notices.

Every answer to someone not signed in is the same whether or not an account matches: a
request for a link counts against the same limits, and an unknown name mails nothing; the
API pads those answers to one duration (nimbus.api.routes.accounts), so timing tells nothing
either. Link tokens are nimbus.security.links's: each dies once the state it binds changes (a
reset once the password does), and a reset token is used at most once.
"""

import logging
from collections.abc import Sequence
from datetime import timedelta
from html import escape

from nimbus import metrics
from nimbus.domain.audit import AuditKind
from nimbus.domain.errors import InvalidInput, NotFound, RateLimited
from nimbus.domain.users import NO_PASSWORD, User, UserChanges, email_key, login_name
from nimbus.mail import MailQueue, Message, link
from nimbus.security.links import InvalidLink, LinkKind, LinkTokens
from nimbus.security.password_policy import PasswordPolicy
from nimbus.security.passwords import PasswordHasher
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.throttle import UNKNOWN_ADDRESS, Limit, Throttle
from nimbus.storage.base import SessionStore, UserStore
from nimbus.values import frozen

SERVICE = "nimbus"

log = logging.getLogger("nimbus.mail")


@frozen
class LinkLimits:
    """Mailed links asked for: per address (a client flooding the service), per account (a
    victim's inbox flooded). An account's limit counts the name typed, so an unknown name
    is counted as a known one is; past it, nothing more is mailed, and the answer is the same."""

    per_address: int = 20
    per_account: int = 3
    window_seconds: int = 15 * 60

    @property
    def address(self) -> Limit:
        return Limit("link:address", self.per_address, self.window_seconds)

    @property
    def account(self) -> Limit:
        return Limit("link:account", self.per_account, self.window_seconds)


def invalid_link() -> InvalidInput:
    return InvalidInput(
        "This link is not valid: it has expired, or has been used; ask for a new one",
        code="invalid_token",
    )


class AccountService:
    def __init__(
        self,
        *,
        users: UserStore,
        sessions: SessionStore,
        hasher: PasswordHasher,
        policy: PasswordPolicy,
        links: LinkTokens,
        mails: MailQueue,
        throttle: Throttle,
        audit: AuditTrail,
        public_url: str,
        reset_ttl: timedelta,
        verification_ttl: timedelta,
        limits: LinkLimits = LinkLimits(),
        clock: Clock = utc_now,
    ) -> None:
        self._users = users
        self._sessions = sessions
        self._hasher = hasher
        self._policy = policy
        self._links = links
        self._mails = mails
        self._throttle = throttle
        self._audit = audit
        self._public_url = public_url
        self._reset_ttl = reset_ttl
        self._verification_ttl = verification_ttl
        self._limits = limits
        self._clock = clock

    # Password reset

    def forgot(self, name: str, *, client: str | None) -> None:
        """Mail a reset link to the account `name` (a username or an email) names, if any,
        it has an email and it is neither disabled nor an OIDC account. RateLimited only for
        the address's limit; the account's limit and every other "no" are silent."""
        key = login_name(name)
        if not self._admit(key, client):
            return
        user = self._users.find_by_username(key)
        if user is None and "@" in key:
            user = self._users.find_by_email(key)
        if user is None or user.email is None or user.disabled or user.password_hash == NO_PASSWORD:
            return
        token, _ = self._links.issue(
            LinkKind.PASSWORD_RESET,
            subject=user.id,
            state=user.password_hash,
            ttl=self._reset_ttl,
            now=self._clock(),
        )
        url = link(self._public_url, "/", fragment="reset-password", token=token)
        minutes = int(self._reset_ttl.total_seconds()) // 60
        self._send(
            user.email,
            "Reset your password",
            [
                f"Someone asked to reset the password of your {SERVICE} account {user.username}.",
                f"To choose a new password, open this link within {minutes} minutes:",
            ],
            url,
            ["If it was not you, ignore this mail: your password stays as it is."],
        )
        self._audit.record(AuditKind.PASSWORD_RESET_REQUESTED, subject=user.id, client=client)

    def reset(self, token: str, password: str, *, client: str | None) -> None:
        """Set a new password through a reset link's token, end every session of the account
        and mail its owner a notice. InvalidInput (`invalid_token`) for a token that is not
        valid now: expired, used, or issued before the password last changed."""
        try:
            claims = self._links.verify(LinkKind.PASSWORD_RESET, token)
            user = self._users.get(claims.subject)
        except (InvalidLink, NotFound):
            raise invalid_link() from None
        expected = self._links.binding(LinkKind.PASSWORD_RESET, user.password_hash)
        if claims.binding != expected or user.disabled:
            raise invalid_link()
        self._policy.check(password, username=user.username, email=user.email)
        # Once, even for two requests at the same moment: the store counts the use atomically.
        window = int(self._reset_ttl.total_seconds()) + 60
        if not self._throttle.once("link:reset-used", claims.token_id, window):
            raise invalid_link()
        now = self._clock()
        changes = UserChanges(password_hash=self._hasher.hash(password))
        self._users.update(user.id, changes, expected_version=None, at=now)
        self._sessions.revoke_all(user.id, now)
        self._audit.record(AuditKind.PASSWORD_RESET, actor=user.id, subject=user.id, client=client)
        if user.email is not None:
            self._send(
                user.email,
                "Your password was changed",
                [
                    f"The password of your {SERVICE} account {user.username} was just changed"
                    " through a reset link, and every device signed in to it was signed out.",
                    "If it was not you, reset it again at once, and check the email of the"
                    " account.",
                ],
            )

    # Email verification

    def welcome(self, user: User) -> None:
        """Mail a new account's email a verification link."""
        self._mail_verification(user, first=True)

    def email_taken(self, owner: User, client: str | None) -> None:
        """Tell the owner of an email that someone tried to sign up with it (the sign-up
        answered as a new one does, so that it told nobody the email has an account)."""
        if owner.email is None:
            return
        self._send(
            owner.email,
            f"Someone tried to sign up to {SERVICE} with your email",
            [
                f"Someone tried to make a new {SERVICE} account with this email, which your"
                f" account {owner.username} already has. No account was made.",
                "If it was you, sign in instead, or reset your password if you have"
                " forgotten it. If it was not, you need do nothing.",
            ],
        )

    def email_changed(self, before: User, after: User) -> None:
        """Mail the new email a verification link, and the old one a notice."""
        if after.email is not None:
            self._mail_verification(after, first=False)
        if before.email is not None and before.email != after.email:
            new = "removed" if after.email is None else "changed to another address"
            self._send(
                before.email,
                "The email of your account was changed",
                [
                    f"The email of your {SERVICE} account {after.username} was {new}; this"
                    " address gets no more mail about it.",
                    "If it was not you, reset your password at once (from the sign-in page,"
                    " with your username) and tell an administrator.",
                ],
            )

    def send_verification(self, email: str, *, client: str | None) -> None:
        """Mail a new verification link to `email`, if an account has it unverified; silent
        otherwise, as forgot() is."""
        key = email_key(email)
        if not self._admit(key, client):
            return
        user = self._users.find_by_email(key)
        if user is None or user.email_verified or user.disabled:
            return
        self._mail_verification(user, first=False)

    def verify_email(self, token: str, *, client: str | None) -> User:
        """Mark the account's email verified; InvalidInput (`invalid_token`) unless the token
        is valid and its account still has the email it was mailed to."""
        try:
            claims = self._links.verify(LinkKind.EMAIL_VERIFICATION, token)
            user = self._users.get(claims.subject)
        except (InvalidLink, NotFound):
            raise invalid_link() from None
        if user.email is None or claims.binding != self._email_binding(user.email):
            raise invalid_link()
        if user.email_verified:
            return user  # a link followed twice: done already
        verified = self._users.update(
            user.id, UserChanges(email_verified=True), expected_version=None, at=self._clock()
        )
        self._audit.record(AuditKind.EMAIL_VERIFIED, actor=user.id, subject=user.id, client=client)
        return verified

    def _mail_verification(self, user: User, *, first: bool) -> None:
        assert user.email is not None
        token, _ = self._links.issue(
            LinkKind.EMAIL_VERIFICATION,
            subject=user.id,
            state=email_key(user.email),
            ttl=self._verification_ttl,
            now=self._clock(),
        )
        url = link(self._public_url, "/", fragment="verify-email", token=token)
        days = max(int(self._verification_ttl.total_seconds()) // 86400, 1)
        opening = (
            f"Welcome to {SERVICE}, {user.username}."
            if first
            else f"This email was given for the {SERVICE} account {user.username}."
        )
        self._send(
            user.email,
            "Verify your email",
            [opening, f"To confirm that this address is yours, open this link within {days} days:"],
            url,
            ["If you did not ask for this, ignore this mail."],
        )

    def _email_binding(self, email: str) -> str:
        return self._links.binding(LinkKind.EMAIL_VERIFICATION, email_key(email))

    def _admit(self, account: str, client: str | None) -> bool:
        """Count a link asked for: RateLimited past the address's limit, False (mail nothing)
        past the account's."""
        self._throttle.take((self._limits.address, client or UNKNOWN_ADDRESS))
        try:
            self._throttle.take((self._limits.account, account))
        except RateLimited:
            return False
        return True

    def _send(
        self,
        to: str,
        subject: str,
        before: Sequence[str],
        url: str | None = None,
        after: Sequence[str] = (),
    ) -> None:
        paragraphs = [*before, *([url] if url else []), *after]
        text = "\n\n".join(paragraphs) + "\n"
        html_parts = [f"<p>{escape(p)}</p>" for p in before]
        if url:
            html_parts.append(f'<p><a href="{escape(url)}">{escape(url)}</a></p>')
        html_parts += [f"<p>{escape(p)}</p>" for p in after]
        try:
            message = Message(
                to=to, subject=subject, text=text, html="\n".join(html_parts), link=url
            )
        except ValueError:
            # An address the API took that no mail header may carry: no mail, as when a
            # send fails, and the request goes on. The error would repeat the address.
            why = "not an address a mail can be sent to"
            domain = to.rpartition("@")[2].lower()
            metrics.mail("failed")
            log.warning(
                "mail to a recipient at %s not made: %s",
                domain,
                why,
                extra={"fields": {"mail_domain": domain, "error": why}},
            )
            return
        self._mails.submit(message)
