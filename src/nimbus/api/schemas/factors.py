from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nimbus.api.schemas.mfa import CODE_MAX_LENGTH
from nimbus.api.schemas.passkeys import CHALLENGE_TOKEN_MAX_LENGTH, CREDENTIAL_DESCRIPTION
from nimbus.domain.users import PASSWORD_MAX_LENGTH


class PasskeyProof(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_token: str = Field(
        min_length=1,
        max_length=CHALLENGE_TOKEN_MAX_LENGTH,
        description="From POST /users/me/passkeys/verify/options",
    )
    credential: dict[str, Any] = Field(description=CREDENTIAL_DESCRIPTION)


class Reauthentication(BaseModel):
    """Proof that the account's owner sends a change to how it logs in: the password, and,
    when the account has a second factor, a code from it or a passkey's answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"password": "correct horse battery", "code": "123456"}]},
    )

    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)
    code: str | None = Field(
        default=None,
        min_length=1,
        max_length=CODE_MAX_LENGTH,
        description="From the authenticator app, or a recovery code; when two-step login is on",
    )
    passkey: PasskeyProof | None = Field(
        default=None, description="One of the account's passkeys, instead of a code"
    )

    @model_validator(mode="after")
    def _one_factor(self) -> Self:
        if self.code is not None and self.passkey is not None:
            raise ValueError("send a code or a passkey, not both")
        return self
