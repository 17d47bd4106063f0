"""Second factors: TOTP enrolment, the second step of a login, and recovery codes.

A login whose password is right, of an account with a confirmed factor, gets an MFA step
token (nimbus.security.links, a kind of its own, good for nothing else) instead of tokens;
the second step trades it and a code for them. A TOTP code is accepted one step either side
of now and never twice (the store keeps the last step accepted); a recovery code works once.
Failed codes are counted per account, in a short window and a day's, so a stolen password
buys a few dozen guesses a day at a six-digit code.
"""

import secrets
from collections.abc import Callable
from dataclasses import field
from datetime import timedelta
from typing import Literal

from nimbus.domain.audit import AuditKind
from nimbus.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from nimbus.domain.mfa import FactorMethod, TotpFactor
from nimbus.domain.principals import Principal
from nimbus.domain.users import User
from nimbus.security import totp
from nimbus.security.links import InvalidLink, LinkClaims, LinkKind, LinkTokens
from nimbus.security.macs import Mac
from nimbus.security.secretbox import SecretBox
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.throttle import Limit, Throttle
from nimbus.storage.base import FactorStore, PasskeyStore, UserStore
from nimbus.values import frozen

RECOVERY_CODES = 10
# Lower-case letters and digits a reader cannot confuse (no 0/o, 1/l/i): 12 of them are 59
# bits, shown in groups of four.
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_LENGTH = 12
STEP_TTL = timedelta(minutes=5)  # from the password to the second factor


@frozen
class MfaLimits:
    """Failed codes allowed per account: in a short window, and in a day."""

    per_window: int = 5
    window_seconds: int = 15 * 60
    per_day: int = 30

    @property
    def window(self) -> Limit:
        return Limit("mfa:account", self.per_window, self.window_seconds)

    @property
    def day(self) -> Limit:
        return Limit("mfa:account-day", self.per_day, 24 * 60 * 60)


@frozen
class Enrolment:
    secret: str = field(repr=False)  # base32, for typing into an app that cannot scan
    otpauth_uri: str = field(repr=False)  # holds the secret
    qr_svg: str = field(repr=False)  # and so does this


@frozen
class FactorStatus:
    totp: Literal["off", "pending", "on"]
    recovery_codes_left: int


@frozen
class SecondStep:
    """A second step passed: the account, and the scopes its login asked for."""

    user: User
    scopes: frozenset[str] | None


class SecondFactors:
    def __init__(
        self,
        *,
        users: UserStore,
        factors: FactorStore,
        box: SecretBox,
        digests: Mac,
        links: LinkTokens,
        throttle: Throttle,
        audit: AuditTrail,
        issuer: str,
        step_ttl: timedelta = STEP_TTL,
        limits: MfaLimits = MfaLimits(),
        passkeys: PasskeyStore | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._passkeys = passkeys
        self._users = users
        self._factors = factors
        self._box = box
        self._digests = digests
        self._links = links
        self._throttle = throttle
        self._audit = audit
        self._issuer = issuer
        self._step_ttl = step_ttl
        self._limits = limits
        self._clock = clock

    @property
    def step_ttl(self) -> timedelta:
        return self._step_ttl

    # Enrolment

    def enrol(self, user: User) -> Enrolment:
        """Start (or start again) a TOTP enrolment; Conflict if a factor is on already. Only
        after a full re-authentication (nimbus.services.factors)."""
        secret = totp.new_secret()
        factor = TotpFactor(
            user_id=user.id,
            sealed_secret=self._box.seal(secret, context=_context(user.id)),
            created_at=self._clock(),
            confirmed_at=None,
            last_step=0,
            recovery_codes_left=0,
        )
        try:
            self._factors.begin(factor)
        except Conflict:
            raise _already_on() from None
        uri = totp.provisioning_uri(secret, account=user.username, issuer=self._issuer)
        return Enrolment(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))

    def confirm(self, principal: Principal, code: str, client: str | None) -> list[str]:
        """Turn the pending factor on with a first code from it; its recovery codes, shown
        this once (the store keeps only their digests)."""
        user_id = principal.user_id
        factor = self._factors.get(user_id)
        if factor is not None and factor.confirmed:
            raise _already_on()
        if factor is None:
            raise Conflict(
                "No enrolment is pending: start one with POST /users/me/mfa/totp",
                code="mfa_not_pending",
            )
        counted = self._count_attempt(user_id)
        now = self._clock()
        secret = self._box.open(factor.sealed_secret, context=_context(user_id))
        step = totp.matching_step(secret, code.strip(), now.timestamp(), after=factor.last_step)
        if step is None:
            raise InvalidInput(
                "The code is not right: type the code your authenticator app shows now",
                code="invalid_code",
            )
        self._clear(counted)
        codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
        digests = [self._digest(user_id, code) for code in codes]
        if not self._factors.confirm(
            user_id, factor.sealed_secret, step=step, recovery_codes=digests, at=now
        ):
            raise Conflict(
                "Another enrolment replaced this one: confirm the newest", code="mfa_not_pending"
            )
        self._audit.record(AuditKind.MFA_ENABLED, actor=user_id, subject=user_id, client=client)
        return [_grouped(code) for code in codes]

    def refuse_enrolment(self, user_id: str) -> None:
        """Conflict if the account's authenticator is on: checked before the proof that an
        enrolment takes, so that no code is spent on one that cannot start."""
        factor = self._factors.get(user_id)
        if factor is not None and factor.confirmed:
            raise _already_on()

    def require_on(self, user_id: str) -> None:
        """NotFound unless the account's authenticator is on (before a proof, likewise)."""
        factor = self._factors.get(user_id)
        if factor is None or not factor.confirmed:
            raise _not_on()

    def disable(self, user: User, client: str | None) -> None:
        """Turn the factor off. Only after a full re-authentication
        (nimbus.services.factors)."""
        self.require_on(user.id)
        if not self._factors.remove(user.id):
            raise _not_on()
        self._audit.record(AuditKind.MFA_DISABLED, actor=user.id, subject=user.id, client=client)

    def status(self, principal: Principal) -> FactorStatus:
        """Whether the account's authenticator is off, pending or on, and its unused
        recovery codes."""
        factor = self._factors.get(principal.user_id)
        if factor is None:
            return FactorStatus(totp="off", recovery_codes_left=0)
        if not factor.confirmed:
            return FactorStatus(totp="pending", recovery_codes_left=0)
        return FactorStatus(totp="on", recovery_codes_left=factor.recovery_codes_left)

    # Login

    def required(self, user_id: str) -> bool:
        return bool(self.methods(user_id))

    def methods(self, user_id: str) -> list[FactorMethod]:
        """The second factors the account has: "totp" when its authenticator app is on,
        "passkey" when it has a passkey."""
        factor = self._factors.get(user_id)
        methods: list[FactorMethod] = ["totp"] if factor is not None and factor.confirmed else []
        if self._passkeys is not None and self._passkeys.list_for(user_id):
            methods.append("passkey")
        return methods

    def challenge(self, user: User, scopes: frozenset[str] | None) -> str:
        """The MFA step token for a login whose password was right."""
        token, _ = self._links.issue(
            LinkKind.MFA_STEP,
            subject=user.id,
            state=user.password_hash,
            ttl=self._step_ttl,
            now=self._clock(),
            scope=" ".join(sorted(scopes)) if scopes is not None else None,
        )
        return token

    def second_step(
        self, user: User, claims: LinkClaims, code: str, client: str | None
    ) -> SecondStep:
        """The login of a pending step (pending_step), passed with a code; Unauthenticated
        otherwise. A step token is good for one second step, and is spent before the code:
        a code is never used up by a step that cannot pass."""
        factor = self._factors.get(user.id)
        if factor is None or not factor.confirmed:  # the factor must still be on
            raise _invalid_step()
        self._check_code(user, factor, code, client, before_use=lambda: self.spend_step(claims))
        return _passed(user, claims)

    def pending_step(self, mfa_token: str) -> tuple[User, LinkClaims]:
        """The account a valid MFA step token holds, and its claims; Unauthenticated
        otherwise."""
        try:
            claims = self._links.verify(LinkKind.MFA_STEP, mfa_token)
            user = self._users.get(claims.subject)
        except (InvalidLink, NotFound):
            raise _invalid_step() from None
        # Dead once the password changes.
        if claims.binding != self._links.binding(LinkKind.MFA_STEP, user.password_hash):
            raise _invalid_step()
        return user, claims

    def spend_step(self, claims: LinkClaims) -> None:
        """Spend a step token whose second factor is passing: it is good for one step."""
        window = int(self._step_ttl.total_seconds()) + 60
        if not self._throttle.once("mfa:step-used", claims.token_id, window):
            raise _invalid_step()

    def passed(self, user: User, claims: LinkClaims) -> SecondStep:
        return _passed(user, claims)

    def check_code(self, user: User, code: str, client: str | None) -> None:
        """A TOTP or recovery code of the account's, used up; Unauthenticated
        (`invalid_code`) if it is not right, or the account has no authenticator on."""
        factor = self._factors.get(user.id)
        if factor is None or not factor.confirmed:
            self._count_attempt(user.id)
            raise _invalid_code()
        self._check_code(user, factor, code, client)

    # Checks

    def _check_code(
        self,
        user: User,
        factor: TotpFactor,
        typed: str,
        client: str | None,
        before_use: Callable[[], None] = lambda: None,
    ) -> None:
        """Use up a right code; `before_use` runs once the code is known to be well formed
        (and a TOTP code right), just before it is used up."""
        counted = self._count_attempt(user.id)
        code = typed.strip().replace(" ", "")
        if totp.is_code(code):
            secret = self._box.open(factor.sealed_secret, context=_context(user.id))
            now = self._clock().timestamp()
            step = totp.matching_step(secret, code, now, after=factor.last_step)
            if step is not None:
                before_use()
            passed = step is not None and self._factors.use_step(user.id, step)
        else:
            recovery = _normal_recovery_code(code)
            if recovery is not None:
                before_use()
            passed = recovery is not None and self._factors.use_recovery_code(
                user.id, self._digest(user.id, recovery)
            )
            if passed:
                left = str(max(factor.recovery_codes_left - 1, 0))
                self._audit.record(
                    AuditKind.RECOVERY_CODE_USED,
                    actor=user.id,
                    subject=user.id,
                    client=client,
                    detail={"left": left},
                )
        if not passed:
            self._audit.record(AuditKind.MFA_FAILED, subject=user.id, client=client)
            raise _invalid_code()
        self._clear(counted)

    def _count_attempt(self, user_id: str) -> tuple[str, ...]:
        limits = self._limits
        return self._throttle.take((limits.window, user_id), (limits.day, user_id))

    def _clear(self, counted: tuple[str, ...]) -> None:
        for key in counted:
            self._throttle.clear(key)

    def _digest(self, user_id: str, recovery_code: str) -> str:
        return self._digests.sign(f"{user_id}:{recovery_code}")


def _context(user_id: str) -> str:
    return f"totp:{user_id}"


def _recovery_code() -> str:
    return "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))


def _grouped(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _normal_recovery_code(typed: str) -> str | None:
    """A recovery code as typed, without its hyphens and in lower case; None if it cannot
    be one."""
    code = typed.replace("-", "").lower()
    if len(code) != RECOVERY_LENGTH or not all(c in RECOVERY_ALPHABET for c in code):
        return None
    return code


def _already_on() -> Conflict:
    return Conflict(
        "Two-step login is on already: turn it off first to enrol another authenticator",
        code="mfa_enabled",
    )


def _passed(user: User, claims: LinkClaims) -> SecondStep:
    scopes = frozenset(claims.scope.split()) if claims.scope is not None else None
    return SecondStep(user=user, scopes=scopes)


def _not_on() -> NotFound:
    return NotFound("Two-step login is not on for this account", code="mfa_not_enabled")


def _invalid_code() -> Unauthenticated:
    return Unauthenticated("The code is not right, or was used already", code="invalid_code")


def _invalid_step() -> Unauthenticated:
    return Unauthenticated(
        "This login has expired or is not valid: log in again", code="invalid_mfa_token"
    )
