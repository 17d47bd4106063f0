"""The errors the service layer raises; the API maps each one to a status code.

    NimbusError
     ├── NotFound             the thing does not exist, or is not the caller's to see
     ├── Conflict             a unique value (username, email) is taken
     ├── PermissionDenied     authenticated, but not allowed
     │    ├── SignatureRejected   no SigV4 signature, or one that does not verify
     │    ├── AccountDisabled     the right credentials of an account an administrator disabled
     │    └── SecondFactorNeeded  a change to the account's factors without a second one
     ├── Unauthenticated      no valid credentials presented
     ├── InvalidCredentials   login with a wrong username or password
     ├── PreconditionFailed   If-Match named a version that is no longer current
     ├── InvalidInput         a value the request schema cannot judge (a bad cursor, say)
     ├── RateLimited          too many attempts; retry_after says when to come back
     └── Unavailable          the store cannot be reached

Storage backends translate their driver's errors into these at the boundary, so nothing
above the storage layer sees a driver exception.
"""

from nimbus.domain.mfa import FactorMethod


class NimbusError(Exception):
    code = "error"
    default_message = "Error"

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        super().__init__(self.message)


class NotFound(NimbusError):
    code = "not_found"
    default_message = "Not Found"


class Conflict(NimbusError):
    code = "conflict"
    default_message = "Conflict"


class PermissionDenied(NimbusError):
    code = "forbidden"
    default_message = "Forbidden"


class SignatureRejected(PermissionDenied):
    """403, as API Gateway's IAM authorization answers: SigV4 has no challenge to send."""

    code = "signature_rejected"


class AccountDisabled(PermissionDenied):
    """403 to whoever proves they hold the account (its password, a provider's token): told to
    no one else, so the answer never says more than the credentials did."""

    code = "account_disabled"
    default_message = "This account is disabled; ask an administrator"


class SecondFactorNeeded(PermissionDenied):
    """A change to the account's factors came with its password alone, and the account has
    a second factor: one of `methods` must come too. A 403: the session is fine."""

    code = "second_factor_required"

    def __init__(self, methods: tuple[FactorMethod, ...]) -> None:
        wanted = " or ".join(_PROOFS[m] for m in methods)
        super().__init__(f"Confirm it is you with {wanted} as well as your password")
        self.methods = methods


_PROOFS: dict[FactorMethod, str] = {
    "totp": "a code from your authenticator app (`code`)",
    "passkey": "a passkey (`passkey`)",
}


class Unauthenticated(NimbusError):
    code = "unauthorized"
    default_message = "Unauthorized"


class SecondFactorRequired(Unauthenticated):
    """A login's password was right, and its account asks for a second factor: the login
    goes on at second_step with this MFA token. An error to a caller that wants tokens, so
    that one unaware of second factors fails closed (a 401) rather than take it for a login."""

    code = "mfa_required"

    def __init__(
        self, mfa_token: str, expires_in: int, methods: tuple[FactorMethod, ...] = ("totp",)
    ) -> None:
        super().__init__("This account asks for a second factor: log in at /login")
        self.mfa_token = mfa_token
        self.expires_in = expires_in
        self.methods = methods  # the second factors the account has: "totp", "passkey"


class InvalidCredentials(NimbusError):
    code = "invalid_credentials"
    default_message = "Invalid username or password"


class PreconditionFailed(NimbusError):
    code = "precondition_failed"
    default_message = "The resource has changed since the version given in If-Match"


class InvalidInput(NimbusError):
    code = "invalid_input"
    default_message = "Invalid input"


class RateLimited(NimbusError):
    code = "rate_limited"
    default_message = "Too many attempts, try again later"

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(NimbusError):
    code = "unavailable"
    default_message = "The service is temporarily unavailable"
