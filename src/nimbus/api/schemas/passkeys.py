from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from nimbus.domain.passkeys import PASSKEY_NAME_MAX_LENGTH

CHALLENGE_TOKEN_MAX_LENGTH = 2048
MFA_TOKEN_MAX_LENGTH = 2048

CREDENTIAL_DESCRIPTION = (
    "The PublicKeyCredential the browser answered, as JSON (its toJSON(): id, rawId, type,"
    " and response with base64url fields)"
)


class PasskeyCeremony(BaseModel):
    """Options for navigator.credentials.create() or .get(), and the token that carries
    their challenge back with the answer."""

    options: dict[str, Any] = Field(
        description="PublicKeyCredentialCreationOptionsJSON or"
        " PublicKeyCredentialRequestOptionsJSON (base64url fields)"
    )
    challenge_token: str = Field(description="Good for five minutes and one answer")


class PasskeyRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_token: str = Field(min_length=1, max_length=CHALLENGE_TOKEN_MAX_LENGTH)
    credential: dict[str, Any] = Field(description=CREDENTIAL_DESCRIPTION)
    name: str | None = Field(default=None, max_length=PASSKEY_NAME_MAX_LENGTH)


class PasskeyOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "AbC1-dEf2_gHi3",
                    "name": "Laptop",
                    "created_at": "2026-01-02T03:04:05Z",
                    "last_used_at": None,
                }
            ]
        }
    )

    id: str = Field(description="The credential id, base64url")
    name: str
    created_at: datetime
    last_used_at: datetime | None


class PasskeyList(BaseModel):
    items: list[PasskeyOut]


class PasskeyLogin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    challenge_token: str = Field(min_length=1, max_length=CHALLENGE_TOKEN_MAX_LENGTH)
    credential: dict[str, Any] = Field(description=CREDENTIAL_DESCRIPTION)


class MfaPasskeyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mfa_token: str = Field(min_length=1, max_length=MFA_TOKEN_MAX_LENGTH)
