from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

CODE_MAX_LENGTH = 32  # a six-digit code, or a recovery code with its hyphens and spaces
MFA_TOKEN_MAX_LENGTH = 2048


class FactorStatus(BaseModel):
    """Whether two-step login is on for the account."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"totp": "on", "recovery_codes_left": 10}]}
    )

    totp: Literal["off", "pending", "on"] = Field(
        description="The authenticator app: none, enrolled but not yet confirmed, or asked"
        " for at login"
    )
    recovery_codes_left: int = Field(description="Unused recovery codes (0 unless on)")


class TotpEnrolment(BaseModel):
    """A pending TOTP enrolment: add it to an authenticator app, then confirm it with a code."""

    secret: str = Field(description="The shared secret in base32, for typing in by hand")
    otpauth_uri: str = Field(description="The otpauth:// URI an authenticator app reads")
    qr_svg: str = Field(description="The URI as a QR code: an SVG document")


class TotpCode(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "123456"}]})

    code: str = Field(min_length=1, max_length=CODE_MAX_LENGTH)


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Ten codes, each good for one login without the authenticator. Shown"
        " this once: keep them somewhere safe."
    )


class MfaRequired(BaseModel):
    """The password was right; the account asks for a second factor at POST /auth/mfa."""

    mfa_required: Literal[True] = True
    mfa_token: str = Field(description="Good for one second step, and for nothing else")
    expires_in: int = Field(description="Seconds until the MFA token expires")
    methods: list[Literal["totp", "passkey"]] = Field(
        default=["totp"], description="The second factors the account has"
    )


class MfaStep(BaseModel):
    """The MFA token, and either a code or a passkey's answer to the challenge of
    POST /auth/mfa/passkey/options."""

    model_config = ConfigDict(extra="forbid")

    mfa_token: str = Field(min_length=1, max_length=MFA_TOKEN_MAX_LENGTH)
    code: str | None = Field(
        default=None,
        min_length=1,
        max_length=CODE_MAX_LENGTH,
        description="A code from the authenticator app, or an unused recovery code",
    )
    challenge_token: str | None = Field(default=None, min_length=1, max_length=2048)
    credential: dict[str, Any] | None = Field(
        default=None, description="A passkey's PublicKeyCredential, as JSON"
    )

    @model_validator(mode="after")
    def _one_factor(self) -> Self:
        code = self.code is not None
        passkey = (self.challenge_token, self.credential)
        if code == any(part is not None for part in passkey) or (not code and None in passkey):
            raise ValueError("send either code, or challenge_token and credential")
        return self
