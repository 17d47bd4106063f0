"""The `nimbus` command: run the server and manage accounts."""

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import click
from pydantic import ValidationError

from nimbus.bootstrap import Container, build
from nimbus.domain.errors import NimbusError
from nimbus.domain.users import (
    EMAIL_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    Role,
    User,
    email_key,
)
from nimbus.security.keys import (
    KEY_FILE,
    create_ssm_key,
    delete_ssm_key,
    load_or_create_key,
    ssm_parameter,
)
from nimbus.settings import Settings
from nimbus.storage import open_storage
from nimbus.storage.base import Storage


@click.group()
@click.version_option(package_name="nimbus-api")
def main() -> None:
    """nimbus: todos, accounts, messages and products behind one HTTP API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API."""
    import uvicorn

    with _container() as container:
        # Create the schema and key once here, before workers race to do it.
        url = container.settings.resolved_database_url
    click.echo(f"nimbus on http://{host}:{port} (storage: {_redact(url)})", err=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again so that the
    # process dies of it (143); several workers' supervisor exits 0. One exit code: 0.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    uvicorn.run(
        "nimbus.entrypoints.asgi:app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
    )


def _exit_after_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


@main.group()
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.option("--username", prompt="Username", help="Login name.")
@click.option("--email", default=None, help="Email address (also accepted at login).")
@click.option("--name", default=None, help="Display name.")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(
    username: str, email: str | None, name: str | None, admin: bool, password_stdin: bool
) -> None:
    """Create a user."""
    if not USERNAME_PATTERN.fullmatch(username):
        _fail("username: 1-64 letters, digits or _.@+- , starting with a letter or digit")
    if email is not None and not EMAIL_PATTERN.fullmatch(email.strip()):
        _fail(f"email: {email!r} is not an email address")
    password = _read_password(password_stdin, confirm=True)
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        _fail(f"password: {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters")
    with _container() as container:
        user = container.users.create(
            username=username,
            password=password,
            email=email_key(email) if email else None,
            name=name,
            role=Role.ADMIN if admin else Role.USER,
        )
    click.echo(f"Created {user.role.value} {user.username} ({user.id})")


@users.command("test-password")
@click.option("--username", prompt="Username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_test_password(username: str, password_stdin: bool) -> None:
    """Check a password against the stored hash."""
    password = _read_password(password_stdin, confirm=False)
    with _container() as container:
        ok = container.users.check_password(username, password)
    if not ok:
        _fail("Password verification failed.")
    click.echo("Password verified.")


@users.command("get")
@click.argument("username")
def users_get(username: str) -> None:
    """Show a user's record (never the password hash)."""
    with _container() as container:
        user = container.users.get_by_username(username)
    click.echo(f"Entry for user: {user.username}")
    for field, value in _describe(user):
        click.echo(f"{field:>13} : {value}")


@users.command("list")
def users_list() -> None:
    """List every user."""
    with _container() as container:
        cursor: str | None = None
        while True:
            page = container.users.list_all(limit=100, cursor=cursor)
            for user in page.items:
                click.echo(f"{user.id}  {user.role.value:<5}  {user.username}")
            if page.next_cursor is None:
                break
            cursor = page.next_cursor


@main.group()
def seed() -> None:
    """Fill the store with dummy data."""


@seed.command("products")
@click.option("--count", default=50, show_default=True, type=click.IntRange(1, 1_000_000))
def seed_products(count: int) -> None:
    """Add COUNT realistic dummy products."""
    from nimbus.services.dummy_products import dummy_products

    with (
        _container() as container,
        click.progressbar(length=count, label="Seeding products", file=sys.stderr) as bar,
    ):
        added = container.products.add_all(dummy_products(count), progress=bar.update)
    click.echo(f"Added {added} products.")


@main.group()
def credentials() -> None:
    """Service credentials for SigV4-signed calls to /products."""


@credentials.command("create")
@click.option("--name", required=True, help="Who will use it (a service, a script).")
def credentials_create(name: str) -> None:
    """Issue a key pair; the secret is printed once and cannot be shown again."""
    with _container() as container:
        credential, secret = container.credentials.create(name)
    click.echo(f"AWS_ACCESS_KEY_ID={credential.access_key_id}")
    click.echo(f"AWS_SECRET_ACCESS_KEY={secret}")
    click.echo(
        f"Sign requests for service execute-api in region {container.settings.region}; "
        "the secret is not shown again.",
        err=True,
    )


@credentials.command("list")
def credentials_list() -> None:
    """Every credential (never a secret)."""
    with _container() as container:
        issued = container.credentials.list()
    for credential in issued:
        status = (
            f"revoked {credential.revoked_at:%Y-%m-%d %H:%M}" if credential.revoked_at else "active"
        )
        click.echo(
            f"{credential.access_key_id}  {credential.created_at:%Y-%m-%d %H:%M}  "
            f"{status:<24}  {credential.name}"
        )
    if not issued:
        click.echo("No credentials yet: nimbus credentials create --name NAME", err=True)


@credentials.command("revoke")
@click.argument("access_key_id")
def credentials_revoke(access_key_id: str) -> None:
    """Stop a credential from signing; requests signed with it get 403 from now on."""
    with _container() as container:
        credential = container.credentials.revoke(access_key_id)
    click.echo(f"Revoked {credential.access_key_id} ({credential.name})")


@main.group()
def resources() -> None:
    """Create or remove what the configured store needs."""


@resources.command("create")
@click.option("--cleanup", is_flag=True, help="Remove the tables, their data and the key instead.")
@click.option(
    "--key-only",
    is_flag=True,
    help="Only the signing key: for a SAM deployment, whose template makes the tables.",
)
def resources_create(cleanup: bool, key_only: bool) -> None:
    """Create the tables and the signing key (or, with --cleanup, delete them)."""
    settings = _settings()
    key_file = settings.data_dir / KEY_FILE
    if not key_only:
        _tables(settings, cleanup=cleanup)
    parameter = (
        ssm_parameter(settings.secret_key.get_secret_value()) if settings.secret_key else None
    )
    if parameter is not None:
        _ssm_key(parameter, settings.region, cleanup=cleanup)
    elif settings.secret_key is not None:
        click.echo("Signing key: from NIMBUS_SECRET_KEY")
    elif cleanup:
        if key_file.exists():
            key_file.unlink()
            click.echo(f"Deleting signing key: {key_file}")
    else:
        load_or_create_key(settings.data_dir)
        click.echo(f"Signing key: {key_file}")
    click.echo("Resources deleted." if cleanup else "Resources created.")


def _tables(settings: Settings, *, cleanup: bool) -> None:
    url = _redact(settings.resolved_database_url)
    storage = _open(settings)
    try:
        tables = storage.drop_schema() if cleanup else storage.create_schema()
    except NimbusError as exc:
        _fail(exc.message)
    finally:
        storage.close()
    verb = "Deleting table" if cleanup else "Table ready"
    for table in tables:
        click.echo(f"{verb}: {table} ({url})")


def _ssm_key(parameter: str, region: str, *, cleanup: bool) -> None:
    from nimbus.aws import AwsError, AwsUnreachable  # the DynamoDB extra's

    try:
        if cleanup:
            if delete_ssm_key(parameter, region):
                click.echo(f"Deleting SSM param: {parameter}")
        elif create_ssm_key(parameter, region):
            click.echo(f"Created SSM param: {parameter} (SecureString)")
        else:
            click.echo(f"SSM param ready: {parameter}")
    except (AwsError, AwsUnreachable) as exc:
        _fail(f"SSM: {exc}")


def _describe(user: User) -> list[tuple[str, str]]:
    scheme = user.password_hash.split("$")[1:4]
    return [
        ("id", user.id),
        ("username", user.username),
        ("email", user.email or "-"),
        ("name", user.name or "-"),
        ("role", user.role.value),
        ("password", " ".join(scheme) if scheme else "-"),
        ("created_at", user.created_at.isoformat()),
        ("last_login", user.last_login.isoformat() if user.last_login else "never"),
    ]


def _read_password(from_stdin: bool, *, confirm: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _fail("no password on standard input")
        return password
    if not sys.stdin.isatty():
        _fail("standard input is not a terminal: pipe the password with --password-stdin")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return value


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = "NIMBUS_" + str(first["loc"][0]).upper() if first["loc"] else "settings"
        _fail(f"configuration: {field}: {first['msg']}")


def _open(settings: Settings) -> Storage:
    try:
        return open_storage(settings.resolved_database_url, timeout=settings.database_timeout)
    except ValueError as exc:
        _fail(f"configuration: {exc}")


@contextmanager
def _container() -> Iterator[Container]:
    try:
        container = build(_settings())
    except (ValueError, NimbusError) as exc:
        _fail(f"configuration: {exc}")
    try:
        yield container
    except NimbusError as exc:
        _fail(exc.message)
    finally:
        container.close()


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)
