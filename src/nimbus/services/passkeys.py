"""Passkeys (WebAuthn, through py_webauthn): registering them on an account, a login with one
alone (a discoverable credential, with user verification), and one as a login's second step.

A ceremony keeps no state here: its challenge goes out with a challenge token (a link token
of its own kind, five minutes) whose binding is a digest of the challenge and its purpose,
and the token works once. py_webauthn checks the origin, the RP ID, the signature and the
flags; the store takes a use only with a greater counter, so a cloned authenticator is
refused. py_webauthn is imported only when a ceremony runs: a Lambda's start imports none.
"""

import base64
import binascii
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from nimbus.domain.audit import AuditKind
from nimbus.domain.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from nimbus.domain.passkeys import PASSKEY_NAME_MAX_LENGTH, Passkey
from nimbus.domain.principals import Principal
from nimbus.domain.users import User
from nimbus.security.links import InvalidLink, LinkKind, LinkTokens
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.throttle import Throttle
from nimbus.storage.base import PasskeyStore, UserStore
from nimbus.values import frozen

CHALLENGE_TTL = timedelta(minutes=5)
KIND = LinkKind.PASSKEY_CHALLENGE


class Purpose(StrEnum):
    REGISTER = "register"
    LOGIN = "login"
    SECOND_STEP = "second-step"
    REAUTH = "reauth"  # a signed-in account proving itself before a change to its factors


@frozen
class PasskeyAnswer:
    """A browser's answer to a challenge, and the token that carried the challenge."""

    challenge_token: str = field(repr=False)
    credential: Mapping[str, Any]


@frozen
class Ceremony:
    """Options for navigator.credentials.create() or .get(), as JSON, and the token that
    carries their challenge back."""

    options: dict[str, Any]
    challenge_token: str = field(repr=False)


@frozen
class RelyingParty:
    id: str
    name: str
    origins: tuple[str, ...]


class Passkeys:
    def __init__(
        self,
        *,
        users: UserStore,
        passkeys: PasskeyStore,
        links: LinkTokens,
        throttle: Throttle,
        audit: AuditTrail,
        relying_party: RelyingParty,
        clock: Clock = utc_now,
    ) -> None:
        self._users = users
        self._passkeys = passkeys
        self._links = links
        self._throttle = throttle
        self._audit = audit
        self._rp = relying_party
        self._clock = clock

    def passkeys_of(self, principal: Principal) -> list[Passkey]:
        return self._passkeys.list_for(principal.user_id)

    # Registration

    def registration_options(self, user: User) -> Ceremony:
        """Options for a new passkey; only after a full re-authentication
        (nimbus.services.factors), as the challenge token is all registering needs."""
        from webauthn import generate_registration_options, options_to_json
        from webauthn.helpers.structs import (
            AuthenticatorSelectionCriteria,
            PublicKeyCredentialDescriptor,
            ResidentKeyRequirement,
            UserVerificationRequirement,
        )

        challenge = secrets.token_bytes(32)
        options = generate_registration_options(
            rp_id=self._rp.id,
            rp_name=self._rp.name,
            user_id=user.id.encode(),
            user_name=user.username,
            user_display_name=user.username,
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(id=_decode(p.credential_id))
                for p in self._passkeys.list_for(user.id)
            ],
        )
        token = self._challenge_token(Purpose.REGISTER, user.id, challenge)
        return Ceremony(json.loads(options_to_json(options)), token)

    def register(
        self,
        principal: Principal,
        *,
        challenge_token: str,
        credential: Mapping[str, Any],
        name: str | None,
        client: str | None,
    ) -> Passkey:
        """Verify a new credential against its challenge and store it; Conflict if it is
        registered already (to this account or another)."""
        from webauthn import verify_registration_response
        from webauthn.helpers.exceptions import WebAuthnException

        user = self._users.get(principal.user_id)
        try:
            challenge = self._spend_challenge(
                challenge_token, Purpose.REGISTER, credential, user.id
            )
        except Unauthenticated as exc:  # signed in: a stale challenge is the client's mistake
            raise InvalidInput(exc.message, code=exc.code) from None
        try:
            verified = verify_registration_response(
                credential=dict(credential),
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=list(self._rp.origins),
                require_user_verification=True,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            # The library's reason goes to the audit trail, not to the client.
            self._refused(user.id, client, "registration", str(exc)[:200])
            raise InvalidInput(
                "The passkey was not accepted: the browser's answer does not match the"
                " challenge, this site, or a verified user",
                code="invalid_passkey",
            ) from None
        transports = credential.get("response", {}).get("transports") or []
        passkey = Passkey(
            credential_id=_encode(verified.credential_id),
            user_id=user.id,
            public_key=_encode(verified.credential_public_key),
            sign_count=verified.sign_count,
            transports=tuple(str(t) for t in transports if isinstance(t, str))[:8],
            name=(name or "").strip()[:PASSKEY_NAME_MAX_LENGTH] or "Passkey",
            created_at=self._clock(),
            last_used_at=None,
        )
        self._passkeys.add(passkey)
        self._audit.record(
            AuditKind.PASSKEY_ADDED,
            actor=user.id,
            subject=user.id,
            client=client,
            detail={"passkey": passkey.credential_id[:16]},
        )
        return passkey

    def remove(self, user: User, credential_id: str, client: str | None) -> None:
        """Remove one of the account's passkeys; NotFound for a passkey of anyone else's.
        Only after a full re-authentication (nimbus.services.factors)."""
        if not self._passkeys.remove(user.id, credential_id):
            raise _no_such_passkey()
        self._audit.record(
            AuditKind.PASSKEY_REMOVED,
            actor=user.id,
            subject=user.id,
            client=client,
            detail={"passkey": credential_id[:16]},
        )

    # Authentication

    def login_options(self) -> Ceremony:
        """Options for a login with a passkey alone: any discoverable credential, verified."""
        return self._authentication_options(Purpose.LOGIN, "", [])

    def second_step_options(self, user: User) -> Ceremony:
        """Options for a second step: one of the account's passkeys."""
        return self._authentication_options(
            Purpose.SECOND_STEP, user.id, self._passkeys.list_for(user.id)
        )

    def login(
        self,
        answer: PasskeyAnswer,
        client: str | None,
        before_use: Callable[[User], None],
    ) -> User:
        """The account a discoverable credential with user verification logs in;
        `before_use` (the login's own checks of the account) runs once the answer verifies,
        before the passkey's use is recorded."""
        challenge = self._spend_challenge(
            answer.challenge_token, Purpose.LOGIN, answer.credential, ""
        )
        return self._authenticate(challenge, answer.credential, client, None, before_use)

    def second_step(
        self,
        user: User,
        answer: PasskeyAnswer,
        client: str | None,
        before_use: Callable[[User], None],
    ) -> None:
        """Pass a login's second step with one of `user`'s passkeys; `before_use` runs once
        the answer verifies, just before the passkey's use is recorded."""
        challenge = self._spend_challenge(
            answer.challenge_token, Purpose.SECOND_STEP, answer.credential, user.id
        )
        self._authenticate(challenge, answer.credential, client, user, before_use)

    def reauth_options(self, user: User) -> Ceremony:
        """Options for a signed-in account to prove itself with one of its passkeys;
        NotFound if it has none."""
        passkeys = self._passkeys.list_for(user.id)
        if not passkeys:
            raise _no_such_passkey()
        return self._authentication_options(Purpose.REAUTH, user.id, passkeys)

    def require_own(self, user_id: str, credential_id: str) -> None:
        """NotFound unless the passkey is the account's: checked before the proof a removal
        takes, so that no code is spent on a removal that cannot happen."""
        if not any(p.credential_id == credential_id for p in self._passkeys.list_for(user_id)):
            raise _no_such_passkey()

    def reauthenticate(self, user: User, answer: PasskeyAnswer, client: str | None) -> None:
        """Prove a signed-in account with one of its passkeys; PermissionDenied if not (the
        session is fine: it is this proof that failed)."""
        try:
            challenge = self._spend_challenge(
                answer.challenge_token, Purpose.REAUTH, answer.credential, user.id
            )
            self._authenticate(challenge, answer.credential, client, user)
        except Unauthenticated as exc:
            raise PermissionDenied(exc.message, code=exc.code) from None

    def _authentication_options(
        self, purpose: Purpose, subject: str, allowed: list[Passkey]
    ) -> Ceremony:
        from webauthn import generate_authentication_options, options_to_json
        from webauthn.helpers.structs import (
            AuthenticatorTransport,
            PublicKeyCredentialDescriptor,
            UserVerificationRequirement,
        )

        known = {t.value for t in AuthenticatorTransport}
        challenge = secrets.token_bytes(32)
        options = generate_authentication_options(
            rp_id=self._rp.id,
            challenge=challenge,
            allow_credentials=[
                PublicKeyCredentialDescriptor(
                    id=_decode(p.credential_id),
                    transports=[AuthenticatorTransport(t) for t in p.transports if t in known],
                )
                for p in allowed
            ],
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if purpose is Purpose.LOGIN
                else UserVerificationRequirement.PREFERRED
            ),
        )
        token = self._challenge_token(purpose, subject, challenge)
        return Ceremony(json.loads(options_to_json(options)), token)

    def _authenticate(
        self,
        challenge: bytes,
        credential: Mapping[str, Any],
        client: str | None,
        user: User | None,
        before_use: Callable[[User], None] = lambda _: None,
    ) -> User:
        from webauthn import verify_authentication_response
        from webauthn.helpers.exceptions import WebAuthnException

        credential_id = credential.get("id")
        passkey = self._passkeys.get(credential_id) if isinstance(credential_id, str) else None
        if passkey is None or (user is not None and passkey.user_id != user.id):
            raise _not_accepted()
        try:
            owner = user or self._users.get(passkey.user_id)
        except NotFound:
            raise _not_accepted() from None
        handle = credential.get("response", {}).get("userHandle")
        if handle and _decode_or_none(handle) != owner.id.encode():
            raise _not_accepted()
        try:
            verified = verify_authentication_response(
                credential=dict(credential),
                expected_challenge=challenge,
                expected_rp_id=self._rp.id,
                expected_origin=list(self._rp.origins),
                credential_public_key=_decode(passkey.public_key),
                credential_current_sign_count=passkey.sign_count,
                require_user_verification=user is None,
            )
        except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
            reason = "counter" if "sign count" in str(exc) else "response"
            self._refused(owner.id, client, reason, str(exc)[:200])
            raise _not_accepted() from None
        before_use(owner)
        if not self._passkeys.record_use(
            passkey.credential_id, verified.new_sign_count, self._clock()
        ):
            self._refused(owner.id, client, "counter")
            raise _not_accepted()
        return owner

    # Challenges

    def _challenge_token(self, purpose: Purpose, subject: str, challenge: bytes) -> str:
        token, _ = self._links.issue(
            KIND,
            subject=subject,
            state=f"{purpose}:{_encode(challenge)}",
            ttl=CHALLENGE_TTL,
            now=self._clock(),
        )
        return token

    def _spend_challenge(
        self, token: str, purpose: Purpose, credential: Mapping[str, Any], subject: str
    ) -> bytes:
        """The challenge of a valid token of `purpose` for `subject` that the credential
        answers, spent: a token works once."""
        try:
            claims = self._links.verify(KIND, token)
        except InvalidLink:
            raise _invalid_challenge() from None
        challenge = self._challenge_of(credential)
        binding = self._links.binding(KIND, f"{purpose}:{_encode(challenge)}")
        if claims.subject != subject or claims.binding != binding:
            raise _invalid_challenge()
        window = int(CHALLENGE_TTL.total_seconds()) + 60
        if not self._throttle.once("passkey:challenge-used", claims.token_id, window):
            raise _invalid_challenge()
        return challenge

    @staticmethod
    def _challenge_of(credential: Mapping[str, Any]) -> bytes:
        try:
            client_data = json.loads(_decode(credential["response"]["clientDataJSON"]))
            return _decode(client_data["challenge"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            raise InvalidInput(
                "The credential is not a WebAuthn response", code="invalid_passkey"
            ) from None

    def _refused(
        self, user_id: str, client: str | None, reason: str, why: str | None = None
    ) -> None:
        detail = {"reason": reason} | ({"why": why} if why else {})
        self._audit.record(AuditKind.PASSKEY_REFUSED, subject=user_id, client=client, detail=detail)


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _decode_or_none(text: object) -> bytes | None:
    if not isinstance(text, str):
        return None
    try:
        return _decode(text)
    except (ValueError, binascii.Error):
        return None


def _no_such_passkey() -> NotFound:
    return NotFound("You have no passkey with that id", code="passkey_not_found")


def _not_accepted() -> Unauthenticated:
    return Unauthenticated("The passkey was not accepted", code="invalid_passkey")


def _invalid_challenge() -> Unauthenticated:
    return Unauthenticated(
        "This passkey challenge has expired, was used, or is not valid: start again",
        code="invalid_challenge",
    )
