"""Configuration from the environment (NIMBUS_*), with a .env file honoured.

Each field is read from NIMBUS_<FIELD> (in any case): from the environment, else from the
.env file in the working directory, else its default; a value given to Settings() wins over
both. Values are strings, which the model's validation converts. pydantic-settings does the
same and more, but its import was a twentieth of a Lambda cold start; a .env file's parser
(python-dotenv) is imported only where there is one.
"""

import os
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from nimbus.domain.users import (
    EMAIL_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    email_key,
)
from nimbus.security.keys import check_configured_key, ssm_parameter
from nimbus.security.password_policy import MAX_LENGTH_FLOOR


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "nimbus"


def _usable_cpus() -> int:
    """The CPUs this process may run on (a container's cpuset, taskset), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


DEFAULT_MAIL_FROM = "nimbus@localhost"


LOCAL_PUBLIC_URL = "http://127.0.0.1:8000"  # `nimbus serve`'s own default address


# The variables of a field not read from NIMBUS_<FIELD>: the first one set wins.
VARIABLES = {"region": ("NIMBUS_REGION", "AWS_REGION")}


class Settings(BaseModel):
    # hide_input_in_errors: a refused value is never repeated in the error's text (an SMTP
    # password in NIMBUS_MAIL_URL, a weak key), which Lambda's init would log. extra="forbid":
    # the environment gives fields only, so an unknown name is a caller's misspelling.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        validate_default=True,
    )

    def __init__(self, *, env_file: Path | str | None = ".env", **values: Any) -> None:
        """The environment's settings (and `env_file`'s, unless None), `values` over them."""
        super().__init__(**(_configured(env_file) | values))

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    # PostgreSQL: the longest a request waits to connect or for a pooled connection before it
    # gets 503, so an unreachable server fails requests fast instead of holding them.
    database_timeout: float = Field(default=2.0, gt=0, le=60, description="seconds")
    secret_key: SecretStr | None = None
    # How often each process rereads the signing keys `nimbus keys rotate` adds; a new key
    # signs once it is this old (and 2 s more), so every process of a deployment must share it.
    signing_key_reload: int = Field(default=30, ge=1, le=3600, description="seconds")

    # How access tokens are signed: HS256 with the signing keys themselves, or ES256 / EdDSA
    # with key pairs derived from them, whose public keys GET /.well-known/jwks.json serves.
    # Only this one algorithm is accepted: a switch refuses the access tokens signed before.
    token_algorithm: Literal["HS256", "ES256", "EdDSA"] = "HS256"
    access_token_ttl: int = Field(default=15 * 60, gt=0, description="seconds")
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, gt=0, description="seconds")
    # A refresh token used again this soon after its first use (a double click, two tabs)
    # gets the same new pair instead of ending the session as a stolen copy would.
    refresh_reuse_grace: int = Field(default=10, ge=0, le=60, description="seconds")
    token_issuer: str = "nimbus"
    token_audience: str = "nimbus"
    # The name an authenticator app shows beside an account's codes.
    totp_issuer: str = Field(default="nimbus", min_length=1, max_length=64)
    # Passkeys (WebAuthn): the relying party's id (a domain; unset, the public URL's host),
    # the origins a ceremony may come from (comma-separated; unset, the public URL's), and
    # the name an authenticator shows.
    webauthn_rp_id: str | None = None
    webauthn_origins: str | None = None
    webauthn_rp_name: str = Field(default="nimbus", min_length=1, max_length=64)

    # Failed logins per window: from one client (an address, or a device that has logged in
    # before), from every new client of an account together, and from one address overall.
    login_max_failures_per_client: int = Field(default=10, gt=0)
    login_max_failures_per_account: int = Field(default=100, gt=0)
    login_max_failures_per_address: int = Field(default=100, gt=0)
    login_failure_window: int = Field(default=15 * 60, gt=0, description="seconds")
    signup_max_per_address: int = Field(default=30, gt=0, description="per 5 minutes")
    messages_max_per_account: int = Field(default=30, gt=0, description="per minute")
    refresh_max_per_address: int = Field(default=150, gt=0, description="per 5 minutes")
    # How long the audit trail keeps an event: DynamoDB's TTL removes it then, the SQL stores
    # a batch at a time as new events come.
    audit_retention_days: int = Field(default=90, gt=0, le=3650, description="days")
    # The proxies whose X-Forwarded-For / Forwarded name the client: addresses or networks,
    # comma-separated, or "*". Empty: the peer's address is the client's.
    forwarded_allow_ips: tuple[str, ...] = ()

    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_groups_claim: str = "groups"
    oidc_admin_group: str = "admins"

    allow_signup: bool = True
    region: str = "us-east-1"  # or AWS_REGION (VARIABLES)
    cors_origins: tuple[str, ...] = ()
    # A custom domain's API mapping key, which API Gateway leaves in the path it sends Lambda.
    api_base_path: str = "/"
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    password_hash_concurrency: int = Field(default_factory=_usable_cpus, gt=0)
    # The passwords a person may choose (nimbus.security.password_policy): a length in code
    # points within NIST's bounds (at least 8; a maximum of at least 64), and not a common one.
    password_min_length: int = Field(default=PASSWORD_MIN_LENGTH, ge=PASSWORD_MIN_LENGTH)
    password_max_length: int = Field(
        default=PASSWORD_MAX_LENGTH, ge=MAX_LENGTH_FLOOR, le=PASSWORD_MAX_LENGTH
    )
    password_blocklist: bool = True
    # One line per record on stderr: JSON, or text for a person (the default at a terminal).
    log_format: Literal["json", "text"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # GET /metrics answers only with this bearer token; unset, there is no /metrics.
    metrics_token: SecretStr | None = Field(default=None, min_length=16)
    # On Lambda, the CloudWatch namespace of the metrics' EMF lines; empty: no metric lines.
    metrics_namespace: str = Field(default="nimbus", max_length=255)

    # Mail (nimbus.mail): smtp://, smtps://, ses://, or unset / file:// for the outbox folder
    # in the data dir. Checked at start-up; never logged with its password.
    mail_url: str | None = None
    # From: an address, or "Name <address>".
    mail_from: str = DEFAULT_MAIL_FROM
    # The http(s) base of the links in mails. Never taken from a request's Host header (a
    # reset link must not point where a forged header says); unset, `nimbus serve` sets its
    # own address, and anything else links to LOCAL_PUBLIC_URL.
    public_url: str | None = None
    # The longest one send may take, whatever the server does, before it is given up.
    mail_timeout: float = Field(default=10, gt=0, le=60, description="seconds")

    # Accounts (nimbus.services.accounts): with this on, an account whose email is not
    # verified cannot log in, and a sign-up never tells that an email has an account.
    require_verified_email: bool = False
    password_reset_ttl: int = Field(default=30 * 60, ge=60, le=24 * 3600, description="seconds")
    email_verification_ttl: int = Field(
        default=3 * 24 * 3600, ge=600, le=30 * 24 * 3600, description="seconds"
    )
    # An administrator made at start-up when no account has this username (an existing one is
    # left as it is): both or neither. The password may be ssm:/NAME, a SecureString parameter
    # read only when the account is made.
    first_admin_username: str | None = None
    first_admin_password: SecretStr | None = None
    first_admin_email: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("cors_origins", "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip() for origin in value.split(",") if origin.strip())
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _proxies_are_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            if entry == "*":
                continue
            try:
                ip_network(entry, strict=False)
            except ValueError:
                # A setting refused in one line; ipaddress's error says the same, less well.
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("secret_key")
    @classmethod
    def _refuse_weak_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ssm_parameter(value.get_secret_value()) is None:
            check_configured_key(value.get_secret_value())
        return value

    @field_validator("mail_url")
    @classmethod
    def _mail_url_is_usable(cls, value: str | None) -> str | None:
        if not value:
            return None
        # Imported here, and only for a value that is set: a process without mail settings
        # (a Lambda cold start) never imports nimbus.mail for them.
        from nimbus.mail import parse_mail_url

        parse_mail_url(value)  # ValueError in one line, without the password
        return value

    @field_validator("mail_from")
    @classmethod
    def _mail_from_is_an_address(cls, value: str) -> str:
        if value == DEFAULT_MAIL_FROM:
            return value
        from nimbus.mail import parse_sender

        parse_sender(value)
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _public_url_is_a_base(cls, value: str | None) -> str | None:
        if not value:
            return None
        from nimbus.mail import check_public_url

        return check_public_url(value)

    @model_validator(mode="after")
    def _password_bounds_in_order(self) -> Self:
        if self.password_max_length < self.password_min_length:
            raise ValueError(
                "NIMBUS_PASSWORD_MAX_LENGTH must be at least NIMBUS_PASSWORD_MIN_LENGTH"
            )
        return self

    @field_validator(
        "first_admin_username", "first_admin_password", "first_admin_email", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # A template passes "" for a parameter left out.
        return None if value == "" else value

    @field_validator("first_admin_username")
    @classmethod
    def _first_admin_is_a_username(cls, value: str | None) -> str | None:
        if value is not None and not USERNAME_PATTERN.fullmatch(value):
            raise ValueError(
                "must be 1-64 letters, digits or _.@+- , starting with a letter or digit"
            )
        return value

    @field_validator("first_admin_email")
    @classmethod
    def _first_admin_email_is_an_address(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL_PATTERN.fullmatch(value.strip()):
            raise ValueError("must be an email address")
        return email_key(value) if value is not None else None

    @model_validator(mode="after")
    def _first_admin_is_whole(self) -> Self:
        # Both or neither: each message names the one missing.
        if self.first_admin_username is not None and self.first_admin_password is None:
            raise ValueError(
                "NIMBUS_FIRST_ADMIN_PASSWORD is required with NIMBUS_FIRST_ADMIN_USERNAME"
            )
        if self.first_admin_username is None and self.first_admin_password is not None:
            raise ValueError(
                "NIMBUS_FIRST_ADMIN_USERNAME is required with NIMBUS_FIRST_ADMIN_PASSWORD"
            )
        if self.first_admin_username is None and self.first_admin_email is not None:
            raise ValueError(
                "NIMBUS_FIRST_ADMIN_USERNAME is required with NIMBUS_FIRST_ADMIN_EMAIL"
            )
        # Its length is checked here, the rest of the password policy when the account is made.
        given = self.first_admin_password.get_secret_value() if self.first_admin_password else ""
        lowest, highest = self.password_min_length, self.password_max_length
        if given and ssm_parameter(given) is None and not lowest <= len(given) <= highest:
            raise ValueError(
                f"NIMBUS_FIRST_ADMIN_PASSWORD must be {lowest} to {highest} characters"
                " (NIMBUS_PASSWORD_MIN_LENGTH, NIMBUS_PASSWORD_MAX_LENGTH)"
            )
        return self

    @model_validator(mode="after")
    def _oidc_needs_an_audience(self) -> Self:
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError("NIMBUS_OIDC_AUDIENCE is required with NIMBUS_OIDC_ISSUER")
        return self

    @model_validator(mode="after")
    def _mail_to_people_needs_a_public_url(self) -> Self:
        if self.mail_url and not self.public_url:
            from nimbus.mail.urls import reaches_people

            if reaches_people(self.mail_url):
                raise ValueError(
                    "NIMBUS_PUBLIC_URL is required with this NIMBUS_MAIL_URL: the links in"
                    " the mails must point at this service's public address"
                )
        return self

    @property
    def link_base(self) -> str:
        """Where the links in mails point."""
        return self.public_url or LOCAL_PUBLIC_URL

    @property
    def resolved_webauthn_rp_id(self) -> str:
        return self.webauthn_rp_id or (urlsplit(self.link_base).hostname or "localhost")

    @property
    def resolved_webauthn_origins(self) -> list[str]:
        if self.webauthn_origins:
            return [o.strip().rstrip("/") for o in self.webauthn_origins.split(",") if o.strip()]
        base = urlsplit(self.link_base)
        return [f"{base.scheme}://{base.netloc}"]

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'nimbus.db'}"


def _configured(env_file: Path | str | None) -> dict[str, str]:
    """Each field's value in the environment, else in the .env file, where either has one."""
    sources = [{name.upper(): value for name, value in os.environ.items()}]
    if env_file is not None and Path(env_file).is_file():
        from dotenv import dotenv_values

        file = dotenv_values(env_file)
        sources.append({name.upper(): v for name, v in file.items() if v is not None})
    found = {}
    for field in Settings.model_fields:
        variables = VARIABLES.get(field, (f"NIMBUS_{field.upper()}",))
        value = next((s[v] for s in sources for v in variables if v in s), None)
        if value is not None:
            found[field] = value
    return found
