from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from nimbus.domain.users import PASSWORD_MAX_LENGTH


class LoginRequest(BaseModel):
    """Credentials: a username or an email, and the password."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"username": "alice", "password": "correct horse battery"}]
        },
    )

    username: str | None = Field(default=None, min_length=1, max_length=254)
    email: str | None = Field(default=None, min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)

    @model_validator(mode="after")
    def _one_login(self) -> Self:
        if (self.username is None) == (self.email is None):
            raise ValueError("give either username or email")
        return self


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=512)


class TokenResponse(BaseModel):
    token: str = Field(description="The access token (seed 000's name for it)")
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str


class OAuthTokenResponse(BaseModel):
    """RFC 6749 section 5.1."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
    scope: str


class OAuthError(BaseModel):
    """RFC 6749 section 5.2, with nimbus's message and code beside it."""

    error: str
    error_description: str
    message: str
    code: str
    mfa_token: str | None = Field(
        default=None,
        description="With code `mfa_required`: the password was right; send this and a code"
        " from the second factor to /auth/mfa",
    )
    expires_in: int | None = Field(default=None, description="Seconds the MFA token lasts")
