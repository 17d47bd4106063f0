from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nimbus.api.schemas.users import Email, Password

# A link token is a JWT of a few hundred characters; this bounds what a client can send.
Token = Field(min_length=1, max_length=2048)


class ForgotPassword(BaseModel):
    """The account to mail a reset link to: its email or its username."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "alice@example.com"}]}
    )

    email: Email | None = None
    username: str | None = Field(default=None, min_length=1, max_length=254)

    @model_validator(mode="after")
    def _one_name(self) -> Self:
        if (self.username is None) == (self.email is None):
            raise ValueError("give either username or email")
        return self


class ResetPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Token
    password: Password


class VerifyEmail(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Token


class SendVerification(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email


class Accepted(BaseModel):
    message: str


class SessionPublic(BaseModel):
    id: str
    user_agent: str | None
    address: str | None
    created_at: datetime
    last_used_at: datetime = Field(description="The last login or refresh in this session")
    current: bool = Field(description="Whether the token of this request is from it")
