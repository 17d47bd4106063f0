"""The composition root: settings in, a wired set of services out."""

import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cache, partial

from nimbus.calls import runner
from nimbus.container import Container
from nimbus.domain.errors import Conflict, InvalidInput, Unavailable
from nimbus.domain.signing_keys import SigningKey
from nimbus.domain.users import Role
from nimbus.mail import MailQueue, open_mailer
from nimbus.security.authenticator import Authenticator, ExternalAccounts
from nimbus.security.devices import DeviceCookies
from nimbus.security.key_ring import KeyList, KeyRing
from nimbus.security.keys import load_or_create_key, ssm_parameter
from nimbus.security.links import LinkTokens
from nimbus.security.macs import Mac
from nimbus.security.oidc import OidcVerifier
from nimbus.security.password_policy import PasswordPolicy
from nimbus.security.passwords import PasswordHasher
from nimbus.security.secretbox import SecretBox
from nimbus.security.tokens import LEEWAY, AccessTokens
from nimbus.services.accounts import AccountService
from nimbus.services.audit import AuditTrail
from nimbus.services.auth import AuthService, LoginLimits
from nimbus.services.credentials import SEALING_PURPOSE, CredentialService
from nimbus.services.factors import FactorChanges
from nimbus.services.keys import KeyService
from nimbus.services.messages import MessageService
from nimbus.services.mfa import SecondFactors
from nimbus.services.passkeys import Passkeys, RelyingParty
from nimbus.services.products import ProductService
from nimbus.services.throttle import Limit, Throttle
from nimbus.services.todos import TodoService
from nimbus.services.users import UserService
from nimbus.settings import Settings
from nimbus.storage import open_storage
from nimbus.storage.base import Storage
from nimbus.tracing import storage_spans

# Each use of the signing key gets a key of its own, derived for its purpose.
DEVICE_PURPOSE = "nimbus device cookie v1"
ROTATION_PURPOSE = "nimbus refresh rotation v1"
LINK_PURPOSE = "nimbus mailed link v1"
TOTP_PURPOSE = "nimbus totp secret v1"
RECOVERY_PURPOSE = "nimbus recovery code v1"

log = logging.getLogger(__name__)


def build(
    settings: Settings | None = None,
    *,
    provision: bool = True,
    storage: Storage | None = None,
    one_request_at_a_time: bool = False,
) -> Container:
    """Wire the services. With `provision` (a server, the CLI) the schema is created and the
    signing key read now, so a misconfiguration stops start-up; without it (Lambda) start-up
    makes no network call: the tables come from the template and the key is read on first use.
    An embedded store's schema is created either way, as no template makes it. `storage`
    replaces the store NIMBUS_DATABASE_URL names, for a test that brings its own. A runtime
    that serves `one_request_at_a_time` (Lambda) runs every call on the event loop. The first
    administrator (NIMBUS_FIRST_ADMIN_*) is made with `provision` too; on Lambda, before the
    first request (nimbus.entrypoints.aws_lambda).
    """
    settings = settings if settings is not None else Settings()
    if storage is None:
        storage = open_storage(settings.resolved_database_url, timeout=settings.database_timeout)
    if provision or storage.embedded:
        storage.create_schema()
    storage = storage_spans(storage)  # each store call in a span, when traces are on
    hasher = PasswordHasher(max_concurrent=settings.password_hash_concurrency)
    key = _key_source(settings, eager=provision)
    tokens = access_tokens(settings, key=key, keys=storage.signing_keys.list)
    throttle = Throttle(storage.rate_limits)
    audit = AuditTrail(storage.audit, retention=timedelta(days=settings.audit_retention_days))
    mails = mail_queue(settings, inline=one_request_at_a_time)
    policy = password_policy(settings)
    links = LinkTokens(
        Mac(key, purpose=LINK_PURPOSE),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    second_factors = SecondFactors(
        users=storage.users,
        factors=storage.factors,
        box=SecretBox(key, purpose=TOTP_PURPOSE),
        digests=Mac(key, purpose=RECOVERY_PURPOSE),
        links=links,
        throttle=throttle,
        audit=audit,
        issuer=settings.totp_issuer,
        passkeys=storage.passkeys,
    )
    passkeys = Passkeys(
        users=storage.users,
        passkeys=storage.passkeys,
        links=links,
        throttle=throttle,
        audit=audit,
        relying_party=RelyingParty(
            id=settings.resolved_webauthn_rp_id,
            name=settings.webauthn_rp_name,
            origins=tuple(settings.resolved_webauthn_origins),
        ),
    )
    accounts = AccountService(
        users=storage.users,
        sessions=storage.sessions,
        hasher=hasher,
        policy=policy,
        links=links,
        mails=mails,
        throttle=throttle,
        audit=audit,
        public_url=settings.link_base,
        reset_ttl=timedelta(seconds=settings.password_reset_ttl),
        verification_ttl=timedelta(seconds=settings.email_verification_ttl),
    )
    users = UserService(
        storage.users,
        storage.sessions,
        hasher,
        audit=audit,
        throttle=throttle,
        signup_limit=Limit("signup:address", settings.signup_max_per_address, 5 * 60),
        signup_open=settings.allow_signup,
        notices=accounts,
        require_verified=settings.require_verified_email,
        policy=policy,
    )
    container = Container(
        settings=settings,
        storage=storage,
        users=users,
        auth=AuthService(
            users=storage.users,
            sessions=storage.sessions,
            throttle=throttle,
            hasher=hasher,
            tokens=tokens,
            authenticator=authenticator(settings, tokens, accounts=users),
            devices=DeviceCookies(Mac(key, purpose=DEVICE_PURPOSE)),
            rotation=Mac(key, purpose=ROTATION_PURPOSE),
            audit=audit,
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl),
            reuse_grace=timedelta(seconds=settings.refresh_reuse_grace),
            limits=LoginLimits(
                per_client=settings.login_max_failures_per_client,
                per_account=settings.login_max_failures_per_account,
                per_address=settings.login_max_failures_per_address,
                window_seconds=settings.login_failure_window,
                refreshes_per_address=settings.refresh_max_per_address,
            ),
            require_verified=settings.require_verified_email,
            second_factors=second_factors,
            passkeys=passkeys,
        ),
        mfa=second_factors,
        passkeys=passkeys,
        factor_changes=FactorChanges(
            users=storage.users,
            hasher=hasher,
            throttle=throttle,
            second_factors=second_factors,
            passkeys=passkeys,
        ),
        accounts=accounts,
        mails=mails,
        todos=TodoService(storage.todos),
        messages=MessageService(
            storage.messages,
            throttle=throttle,
            limit=Limit("messages:account", settings.messages_max_per_account, 60),
        ),
        products=ProductService(storage.products),
        credentials=CredentialService(
            storage.credentials,
            SecretBox(key, purpose=SEALING_PURPOSE),
            audit=audit,
            region=settings.region,
        ),
        keys=KeyService(tokens.keys, storage.signing_keys, audit=audit),
        audit=audit,
        # An OIDC provider's keys may have to be fetched while authenticating, and its users
        # are enrolled on first sight: authentication can wait then.
        run=runner(
            inline_reads=storage.inline_reads and settings.oidc_issuer is None,
            one_request_at_a_time=one_request_at_a_time,
        ),
    )
    if provision:
        try:
            provide_first_admin(container)
        except BaseException:
            container.close()
            raise
    return container


def provide_first_admin(container: Container) -> None:
    """The administrator NIMBUS_FIRST_ADMIN_* names, made unless an account has its username
    (UserService.ensure_admin); logged either way, never with the password. ValueError naming
    the setting if it cannot be made (its email taken, its password against the policy);
    Unavailable if the store or SSM cannot be reached."""
    settings = container.settings
    username, password = settings.first_admin_username, settings.first_admin_password
    if username is None or password is None:
        return
    try:
        user, made = container.users.ensure_admin(
            username,
            partial(_first_admin_password, password.get_secret_value(), settings.region),
            email=settings.first_admin_email,
        )
    except InvalidInput as exc:  # the password policy's refusal, which never repeats it
        raise ValueError(f"NIMBUS_FIRST_ADMIN_PASSWORD: {exc.message}") from None
    except Conflict as exc:
        raise ValueError(f"{_clashing(container, settings)}: {exc.message}") from None
    if made:
        log.info("First administrator %s made (%s), from NIMBUS_FIRST_ADMIN_*", username, user.id)
    elif user.role is Role.ADMIN:
        log.info("First administrator %s exists; left as it is", username)
    else:
        log.warning(
            "NIMBUS_FIRST_ADMIN_USERNAME names %s, an account that is not an administrator;"
            " left as it is",
            username,
        )


def _clashing(container: Container, settings: Settings) -> str:
    """The setting whose value another account has: the email, else the username (equal to
    another account's email)."""
    if settings.first_admin_email is not None:
        try:
            container.users.refuse_taken(None, settings.first_admin_email)
        except Conflict:
            return "NIMBUS_FIRST_ADMIN_EMAIL"
    return "NIMBUS_FIRST_ADMIN_USERNAME"


def _first_admin_password(value: str, region: str) -> str:
    parameter = ssm_parameter(value)
    if parameter is None:
        return value
    from nimbus.ssm import load_ssm_secret  # the AWS client, only where the password is in SSM

    return load_ssm_secret(
        parameter, region, missing="make it (a SecureString) or unset NIMBUS_FIRST_ADMIN_*"
    )


KeySource = bytes | Callable[[], bytes]


def password_policy(settings: Settings) -> PasswordPolicy:
    return PasswordPolicy(
        min_length=settings.password_min_length,
        max_length=settings.password_max_length,
        blocklist=settings.password_blocklist,
    )


def mail_queue(settings: Settings, *, inline: bool) -> MailQueue:
    """The mail sender NIMBUS_MAIL_URL names, behind a queue; `inline` (Lambda, where
    nothing runs once the answer has gone) sends in the request, within the mail timeout."""
    mailer = open_mailer(
        settings.mail_url,
        sender=settings.mail_from,
        data_dir=settings.data_dir,
        timeout=settings.mail_timeout,
        region=settings.region,
    )
    return MailQueue(mailer, inline=inline)


def _key_source(settings: Settings, *, eager: bool) -> KeySource:
    """The signing key now, or a function that reads it once, on first use."""
    return signing_key(settings) if eager else cache(partial(_key_on_first_use, settings))


def access_tokens(
    settings: Settings,
    *,
    eager: bool = True,
    key: KeySource | None = None,
    keys: KeyList | None = None,
) -> AccessTokens:
    """Access tokens signed by the root key's own key and the rotated ones `keys` lists
    (none without it), reread every NIMBUS_SIGNING_KEY_RELOAD seconds."""
    ttl = timedelta(seconds=settings.access_token_ttl)
    ring = KeyRing(
        key if key is not None else _key_source(settings, eager=eager),
        keys,
        lifetime=ttl + LEEWAY,
        reload=settings.signing_key_reload,
        algorithm=settings.token_algorithm,
    )
    return AccessTokens(
        ring, issuer=settings.token_issuer, audience=settings.token_audience, ttl=ttl
    )


def stored_signing_keys(settings: Settings) -> KeyList:
    """The rotated signing keys in the store NIMBUS_DATABASE_URL names, for a process that
    needs nothing else from it (the Lambda authorizer): the store is opened at the first read,
    so start-up neither connects nor imports its backend."""
    opened: list[Storage] = []

    def keys() -> list[SigningKey]:
        if not opened:
            try:
                storage = open_storage(
                    settings.resolved_database_url, timeout=settings.database_timeout
                )
            except ValueError as exc:
                raise Unavailable(f"NIMBUS_DATABASE_URL: {exc}") from exc
            if storage.embedded:
                storage.create_schema()  # as build() does: no template makes a file's tables
            opened.append(storage)
        return opened[0].signing_keys.list()

    return keys


def authenticator(
    settings: Settings, tokens: AccessTokens, *, accounts: ExternalAccounts | None = None
) -> Authenticator:
    """Bearer tokens into principals; without `accounts` (the Lambda authorizer, which has no
    store) an OIDC provider's tokens are verified but name no account."""
    return Authenticator(
        tokens, _oidc(settings), accounts=accounts, oidc_admin_group=settings.oidc_admin_group
    )


def _key_on_first_use(settings: Settings) -> bytes:
    try:
        return signing_key(settings)
    except (OSError, ValueError, Unavailable) as error:
        # The key file unreadable, SSM unreachable or without the parameter: the request fails
        # as 503, whose handler logs this cause, and the next one tries again. No cause holds
        # the key itself.
        raise Unavailable("The service cannot read its signing key") from error


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
        from nimbus.ssm import load_ssm_key  # the AWS client, only where a key is in SSM

        return load_ssm_key(parameter, settings.region)
    return value.encode()
