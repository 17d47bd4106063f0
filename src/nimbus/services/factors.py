"""Changes to how an account logs in: enrolling or turning off an authenticator app, adding
or removing a passkey. Each takes a full re-authentication first (ASVS 5.0 V6.4): the
password, and when the account has a second factor, one of them too (a code, a recovery
code, or a passkey). So neither a stolen access token, nor one with the password, can add
the thief's factor or take away the owner's.
"""

from dataclasses import field

from nimbus.domain.errors import PermissionDenied, SecondFactorNeeded, Unauthenticated
from nimbus.domain.principals import Principal
from nimbus.domain.users import User
from nimbus.security.passwords import PasswordHasher
from nimbus.services.mfa import Enrolment, SecondFactors
from nimbus.services.passkeys import Ceremony, PasskeyAnswer, Passkeys
from nimbus.services.throttle import Throttle
from nimbus.services.users import check_current_password
from nimbus.storage.base import UserStore
from nimbus.values import frozen


@frozen
class Proof:
    """What a signed-in request sends to show it is the account's owner."""

    password: str = field(repr=False)
    # From the authenticator app, or a recovery code.
    code: str | None = field(default=None, repr=False)
    passkey: PasskeyAnswer | None = None  # to a challenge of Passkeys.reauth_options


class FactorChanges:
    def __init__(
        self,
        *,
        users: UserStore,
        hasher: PasswordHasher,
        throttle: Throttle,
        second_factors: SecondFactors,
        passkeys: Passkeys,
    ) -> None:
        self._users = users
        self._hasher = hasher
        self._throttle = throttle
        self._second_factors = second_factors
        self._passkeys = passkeys

    def enrol_totp(self, principal: Principal, proof: Proof, client: str | None) -> Enrolment:
        self._second_factors.refuse_enrolment(principal.user_id)
        return self._second_factors.enrol(self._reauthenticate(principal, proof, client))

    def disable_totp(self, principal: Principal, proof: Proof, client: str | None) -> None:
        self._second_factors.require_on(principal.user_id)
        self._second_factors.disable(self._reauthenticate(principal, proof, client), client)

    def passkey_options(self, principal: Principal, proof: Proof, client: str | None) -> Ceremony:
        """Options for registering a passkey, whose challenge token is all the registration
        itself needs."""
        return self._passkeys.registration_options(self._reauthenticate(principal, proof, client))

    def remove_passkey(
        self, principal: Principal, credential_id: str, proof: Proof, client: str | None
    ) -> None:
        self._passkeys.require_own(principal.user_id, credential_id)
        self._passkeys.remove(self._reauthenticate(principal, proof, client), credential_id, client)

    def passkey_challenge(self, principal: Principal) -> Ceremony:
        """A challenge for a passkey to answer in a Proof."""
        return self._passkeys.reauth_options(self._users.get(principal.user_id))

    def _reauthenticate(self, principal: Principal, proof: Proof, client: str | None) -> User:
        user = self._users.get(principal.user_id)
        check_current_password(self._throttle, self._hasher, user, proof.password)
        methods = self._second_factors.methods(user.id)
        if not methods:
            return user
        if proof.code is not None and "totp" in methods:
            try:
                self._second_factors.check_code(user, proof.code, client)
            except Unauthenticated as exc:  # the session is fine: this proof is not
                raise PermissionDenied(exc.message, code=exc.code) from None
        elif proof.passkey is not None and "passkey" in methods:
            self._passkeys.reauthenticate(user, proof.passkey, client)
        else:
            raise SecondFactorNeeded(tuple(methods))
        return user
