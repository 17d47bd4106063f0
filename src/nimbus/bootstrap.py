"""The composition root: settings in, a wired set of services out."""

from dataclasses import dataclass
from datetime import timedelta

from nimbus.security.keys import load_or_create_key, load_ssm_key, ssm_parameter
from nimbus.security.oidc import OidcVerifier
from nimbus.security.passwords import PasswordHasher
from nimbus.security.tokens import AccessTokens
from nimbus.services.auth import AuthService, LoginLimits
from nimbus.services.todos import TodoService
from nimbus.services.users import UserService
from nimbus.settings import Settings
from nimbus.storage import open_storage
from nimbus.storage.base import Storage


@dataclass(frozen=True, slots=True)
class Container:
    settings: Settings
    storage: Storage
    users: UserService
    auth: AuthService
    todos: TodoService

    def close(self) -> None:
        self.storage.close()


def build(settings: Settings | None = None) -> Container:
    settings = settings if settings is not None else Settings()
    storage = open_storage(settings.resolved_database_url)
    storage.create_schema()
    key = signing_key(settings)
    hasher = PasswordHasher(max_concurrent=settings.password_hash_concurrency)
    tokens = AccessTokens(
        key,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl=timedelta(seconds=settings.access_token_ttl),
    )
    return Container(
        settings=settings,
        storage=storage,
        users=UserService(storage.users, storage.sessions, hasher),
        auth=AuthService(
            users=storage.users,
            sessions=storage.sessions,
            rate_limits=storage.rate_limits,
            hasher=hasher,
            tokens=tokens,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl),
            oidc=_oidc(settings),
            oidc_admin_group=settings.oidc_admin_group,
            limits=LoginLimits(
                per_account=settings.login_max_failures_per_account,
                per_address=settings.login_max_failures_per_address,
                window_seconds=settings.login_failure_window,
            ),
        ),
        todos=TodoService(storage.todos),
    )


def _oidc(settings: Settings) -> OidcVerifier | None:
    if not settings.oidc_issuer or not settings.oidc_audience:
        return None
    return OidcVerifier(
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks_url=settings.oidc_jwks_url,
        groups_claim=settings.oidc_groups_claim,
    )


def signing_key(settings: Settings) -> bytes:
    """NIMBUS_SECRET_KEY itself, the SSM parameter it names, or the key in the data dir."""
    if settings.secret_key is None:
        return load_or_create_key(settings.data_dir)
    value = settings.secret_key.get_secret_value()
    parameter = ssm_parameter(value)
    if parameter is not None:
        return load_ssm_key(parameter, settings.region)
    return value.encode()
