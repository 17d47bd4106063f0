"""The `nimbus` command: run the server and manage accounts."""

import json
import logging
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, cast

import click
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.errors import NimbusError
from nimbus.domain.signing_keys import KeyState, KeyStatus
from nimbus.domain.users import (
    EMAIL_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    USERNAME_PATTERN,
    Role,
    User,
    email_key,
    username_key,
)
from nimbus.security.keys import KEY_FILE, load_or_create_key, ssm_parameter
from nimbus.settings import Settings
from nimbus.storage import open_storage
from nimbus.storage.base import Storage
from nimbus.values import frozen


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nimbus-api")
def main() -> None:
    """nimbus: todos, accounts, messages and products behind one HTTP API.

    Settings come from NIMBUS_* environment variables (and a .env file). Exit status: 0 on
    success, 1 when a command fails, 2 on a usage error or an invalid NIMBUS_* setting (a
    line on standard error for each problem).
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP API. An invalid NIMBUS_* setting stops it before it listens (exit 2)."""
    import uvicorn

    from nimbus.logs import configure

    settings = _settings()
    configure(settings.log_format, settings.log_level)  # before the build, which may log
    with _container() as container:
        # Create the schema, the key and the first administrator once here, before workers
        # race to do it.
        settings = container.settings
    if settings.public_url is None:
        # The mails' links point here; the workers read it from the environment.
        os.environ["NIMBUS_PUBLIC_URL"] = _own_url(host, port)
    url = settings.resolved_database_url
    logging.getLogger("nimbus").info(
        "nimbus on http://%s:%d (storage: %s)", host, port, _redact(url)
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again so that the
    # process dies of it (143); several workers' supervisor exits 0. One exit code: 0.
    signal.signal(signal.SIGTERM, _exit_after_shutdown)
    with _metrics_files(settings, workers):
        uvicorn.run(
            "nimbus.entrypoints.asgi:app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,
            server_header=False,
            # nimbus configures logging (nimbus.logs) and writes the access lines itself.
            log_config=None,
            access_log=False,
        )


def _own_url(host: str, port: int) -> str:
    """The base URL a browser on this machine reaches `nimbus serve` at."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (a name for every address, not a bind)
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def _metrics_files(settings: Settings, workers: int) -> Iterator[None]:
    """With metrics on and several workers, a fresh directory for their counts
    (prometheus-client's multiprocess mode), named in the environment they inherit and
    removed at the end; unless the operator named one. One worker counts in memory, which
    costs a request less."""
    variable = "PROMETHEUS_MULTIPROC_DIR"
    if settings.metrics_token is None or workers == 1 or os.environ.get(variable):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="nimbus-metrics-") as directory:
        os.environ[variable] = directory
        try:
            yield
        finally:
            del os.environ[variable]


def _exit_after_shutdown(signum: int, frame: object) -> None:
    raise SystemExit(0)


@main.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the document to this file instead of standard output.",
)
def openapi(output: Path | None) -> None:
    """Print the OpenAPI document (GET /openapi.json).

    No server needs to run: the document comes from the routes, and no store, key or data
    dir is touched.
    """
    document = json.dumps(_openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        click.echo(document, nl=False)
        return
    try:
        output.write_text(document, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror}")
    click.echo(f"OpenAPI document written to {output}", err=True)


@frozen
class _Unwired:
    """All of a Container that create_app reads before a request: its settings (for the
    middleware). The document comes from the routes alone, so no store is opened, no key read
    and no data dir made."""

    settings: Settings


def _openapi_document() -> dict[str, Any]:
    from nimbus.api.app import create_app

    app = create_app(cast(Container, _Unwired(_settings())))
    return app.openapi()


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
    with _container() as container:
        try:  # before the password is typed for nothing
            container.users.refuse_taken(username, email)
        except NimbusError as exc:
            _fail(exc.message)
        password = _read_password(password_stdin, confirm=True)
        if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
            _fail(f"password: {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters")
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
                state = "  (disabled)" if user.disabled else ""
                click.echo(f"{user.id}  {user.role.value:<5}  {user.username}{state}")
            if page.next_cursor is None:
                break
            cursor = page.next_cursor


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set a user's password (under the password policy); its sessions end."""
    with _container() as container:
        user = container.users.get_by_username(username)  # before the password is typed
        password = _read_password(password_stdin, confirm=True)
        user = container.users.set_password(user.username, password)
    click.echo(f"Password set for {user.username} ({user.id}); its sessions have ended.")


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable a user: no login, no refresh, its sessions end now; its data stays."""
    with _container() as container:
        user = container.users.get_by_username(username)
        if user.disabled:
            click.echo(f"{user.username} is disabled already.")
            return
        container.users.set_disabled(None, user.id, True)
    click.echo(f"Disabled {user.username} ({user.id}); its sessions have ended.")


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Let a disabled user log in again."""
    with _container() as container:
        user = container.users.get_by_username(username)
        if not user.disabled:
            click.echo(f"{user.username} is enabled already.")
            return
        container.users.set_disabled(None, user.id, False)
    click.echo(f"Enabled {user.username} ({user.id}).")


@users.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Delete without asking.")
def users_delete(username: str, yes: bool) -> None:
    """Delete a user with its todos, messages and sessions; never the last administrator.

    Asks first on a terminal; without one it needs --yes.
    """
    with _container() as container:
        user = container.users.get_by_username(username)
        container.users.refuse_last_admin(user)  # before asking
        if not yes:
            _confirm(
                f"Delete user {user.username} ({user.id}) with its todos, messages and sessions?",
                refusal="deleting a user deletes its data",
            )
        container.users.delete_by_operator(user.id)
        again = container.settings.first_admin_username
    click.echo(f"Deleted {user.username} ({user.id})")
    if again is not None and username_key(again) == username_key(user.username):
        click.echo(
            f"NIMBUS_FIRST_ADMIN_USERNAME names {user.username}: the next start makes it again",
            err=True,
        )


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
@click.option(
    "--export",
    "as_export",
    is_flag=True,
    help='Print shell export lines: eval "$(nimbus credentials create --name N --export)".',
)
def credentials_create(name: str, as_export: bool) -> None:
    """Issue a key pair; the secret is printed once and cannot be shown again."""
    with _container() as container:
        credential, secret = container.credentials.create(name)
    for variable, value in [
        ("AWS_ACCESS_KEY_ID", credential.access_key_id),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ]:
        click.echo(
            f"export {variable}={shlex.quote(value)}" if as_export else f"{variable}={value}"
        )
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
def keys() -> None:
    """The keys access tokens are signed with: rotate them, list them.

    A rotation logs no one out: tokens signed with an earlier key verify until they expire.
    The root key (NIMBUS_SECRET_KEY or the key file) stays, and so does everything sealed
    under it (the service credentials' secrets)."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Add a signing key; it signs once every process has read it.

    Every process rereads the keys every NIMBUS_SIGNING_KEY_RELOAD seconds (30); the new key
    signs once it is that old, and the key it replaces retires once every token it signed
    has expired (NIMBUS_ACCESS_TOKEN_TTL later, and 30 s of leeway). The rotation is recorded
    in the audit trail (key.rotated)."""
    with _container() as container:
        rotation = container.keys.rotate()
    wait = (rotation.signs_from - rotation.created_at).total_seconds()
    click.echo(f"Added signing key {rotation.kid}")
    click.echo(
        f"It signs from {_moment(rotation.signs_from)} (in {wait:g} s), once every process"
        " has read it; tokens signed before verify until they expire."
    )


@keys.command("list")
def keys_list() -> None:
    """Every signing key, oldest first: kid, created, state (next, signing, verifying, retired).

    The first is the root key's own, which signs until the first rotation."""
    with _container() as container:
        statuses = container.keys.list()
    for status in statuses:
        created = _moment(status.created_at) if status.created_at else "(the root key's)"
        click.echo(
            f"{status.kid}  {created:<25}  {status.state.value:<9}  {_key_times(status)}".rstrip()
        )


def _key_times(status: KeyStatus) -> str:
    match status.state:
        case KeyState.NEXT:
            return f"signs from {_moment(status.signs_from)}"
        case KeyState.SIGNING:
            return f"since {_moment(status.signs_from)}" if status.signs_from else ""
        case KeyState.VERIFYING:
            return f"retires {_moment(status.retires_at)}"
        case KeyState.RETIRED:
            return f"retired {_moment(status.retires_at)}"
        case _:
            return "does not open with this root key: ignored"


def _moment(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "-"


@main.group()
def audit() -> None:
    """The audit trail of security events (sign-ups, logins, account and credential changes)."""


@audit.command("list")
@click.option("--subject", help="Only events done to this user id or access key id.")
@click.option("--user", "username", help="Only events done to this user (by username).")
@click.option("--kind", type=click.Choice([kind.value for kind in AuditKind]), help="Only these.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_list(
    subject: str | None, username: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """The newest events first: time, kind, actor, subject, client, request id, detail.

    An actor "-" is the operator (this command line) or someone not signed in."""
    if subject is not None and username is not None:
        _fail("give --subject or --user, not both")
    with _container() as container:
        if username is not None:
            subject = container.users.get_by_username(username).id
        shown, cursor = 0, None
        while shown < limit:
            page = container.audit.list_all(
                subject=subject,
                kind=AuditKind(kind) if kind else None,
                limit=min(100, limit - shown),
                cursor=cursor,
            )
            for event in page.items:
                click.echo(_event_json(event) if as_json else _event_line(event))
            shown += len(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    if not shown:
        click.echo("No audit events.", err=True)


def _event_line(event: AuditEvent) -> str:
    detail = " ".join(f"{key}={value}" for key, value in sorted(event.detail.items()))
    return "  ".join(
        [
            event.at.isoformat(timespec="seconds"),
            f"{event.kind.value:<18}",
            event.actor or "-",
            event.subject or "-",
            event.client or "-",
            event.request_id or "-",
            *([detail] if detail else []),
        ]
    )


def _event_json(event: AuditEvent) -> str:
    return json.dumps(
        {
            "id": event.id,
            "at": event.at.isoformat(),
            "kind": event.kind.value,
            "actor": event.actor,
            "subject": event.subject,
            "client": event.client,
            "request_id": event.request_id,
            "detail": dict(event.detail),
        },
        ensure_ascii=False,
    )


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
@click.option("--yes", is_flag=True, help="With --cleanup: delete without asking.")
def resources_create(cleanup: bool, key_only: bool, yes: bool) -> None:
    """Create the tables and the signing key (or, with --cleanup, delete them).

    --cleanup asks first on a terminal; without one it needs --yes.
    """
    settings = _settings()
    key_file = settings.data_dir / KEY_FILE
    question = _cleanup_question(settings, key_only=key_only) if cleanup and not yes else None
    if question is not None:
        _confirm(question)
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


def _cleanup_question(settings: Settings, *, key_only: bool) -> str | None:
    """What --cleanup would delete, as a question; None if it deletes nothing."""
    doomed = (
        []
        if key_only
        else [f"every nimbus table and its data in {_redact(settings.resolved_database_url)}"]
    )
    if settings.secret_key is None:
        doomed.append(f"the signing key {settings.data_dir / KEY_FILE}")
    elif (parameter := ssm_parameter(settings.secret_key.get_secret_value())) is not None:
        doomed.append(f"the signing key in SSM parameter {parameter}")
    return f"Delete {' and '.join(doomed)}?" if doomed else None


def _confirm(question: str, *, refusal: str = "--cleanup deletes data") -> None:
    if not sys.stdin.isatty():
        _fail(f"{refusal}: add --yes to confirm (standard input is not a terminal)")
    answer: str = click.prompt(f"{question} [y/N]", default="", show_default=False)
    if answer.strip().lower() not in ("y", "yes"):
        _fail("Aborted: nothing deleted.")


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
    from nimbus.ssm import create_ssm_key, delete_ssm_key

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
        ("disabled", user.disabled_at.isoformat() if user.disabled_at else "no"),
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


class ConfigurationError(click.ClickException):
    """Invalid NIMBUS_* settings: a line for each problem, and click's usage-error status."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\nError: ".join(problems))


# Settings whose values an error message never repeats.
_SECRET_FIELDS = {
    "secret_key",
    "database_url",
    "mail_url",
    "metrics_token",
    "first_admin_password",
}


def _settings() -> Settings:
    """The settings, with the database URL checked too; ConfigurationError if any is bad."""
    try:
        settings = Settings()
    except ValidationError as exc:
        # Not chained: the validation error repeats every input, the secret key's among them.
        raise ConfigurationError([_problem(error) for error in exc.errors()]) from None
    _open(settings).close()  # opening connects to nothing yet: it only reads the URL
    return settings


def _problem(error: ErrorDetails) -> str:
    """A validation error in plain words: "NIMBUS_ACCESS_TOKEN_TTL: must be an integer"."""
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a check across settings, whose message names them
        variable, _, rest = message.partition(" ")
        return f"{variable}: {rest}" if variable.startswith("NIMBUS_") else message
    field = str(error["loc"][0])
    variable = field if field.isupper() else f"NIMBUS_{field.upper()}"  # an alias, or a field
    if error["type"] not in _MESSAGES:
        return f"{variable}: {message.removeprefix(variable + ' ')}"
    bounds = {key: f"{value:g}" for key, value in (error.get("ctx") or {}).items()}
    message = _MESSAGES[error["type"]].format(**bounds)
    if field not in _SECRET_FIELDS:
        message += f", got {error['input']!r}"
    return f"{variable}: {message}"


_MESSAGES = {
    "int_parsing": "must be an integer",
    "float_parsing": "must be a number",
    "bool_parsing": "must be true or false",
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _open(settings: Settings) -> Storage:
    try:
        return open_storage(settings.resolved_database_url, timeout=settings.database_timeout)
    except ValueError as exc:
        # Its message is the whole error, shown as one line.
        raise ConfigurationError([f"NIMBUS_DATABASE_URL: {exc}"]) from None


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
    # Up to the last "@" before the query: a password may hold an "@" of its own.
    authority, mark, query = rest.partition("?")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    return scheme + sep + authority + mark + query


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)
