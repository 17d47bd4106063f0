"""Records written as the stores wrote them before accounts management (SQLite schema 4,
Alembic 0004): a user without email_verified and disabled_at, a session without user_agent,
address and last_used_at. On SQL the rows name only the columns of schema 3, so they go into
a schema 3 as well; on DynamoDB the new attributes are removed from the items."""

from importlib import resources
from typing import TYPE_CHECKING, cast

from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.users import User, email_key, username_key
from nimbus.storage.base import Storage
from nimbus.storage.dynamodb import DynamoStorage
from nimbus.storage.dynamodb.items import string
from nimbus.storage.postgres import _sqlalchemy_url
from nimbus.storage.sql import SqlStores
from nimbus.storage.sql.base import Database

if TYPE_CHECKING:
    from alembic.config import Config


def add_user(storage: Storage, user: User) -> None:
    if isinstance(storage, DynamoStorage):
        storage.users.add(user)
        _remove(storage, storage.tables.users, user.id, "email_verified", "disabled_at")
        return
    db = _database(storage)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO users (id, username, username_key, email, email_key, name, role,"
            " password_hash, created_at, updated_at, last_login, version, external_subject)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.id,
                user.username,
                username_key(user.username),
                user.email,
                email_key(user.email) if user.email else None,
                user.name,
                user.role.value,
                user.password_hash,
                db.time(user.created_at),
                db.time(user.updated_at),
                db.time(user.last_login),
                user.version,
                user.external_subject,
            ),
        )


def start_session(storage: Storage, session: Session, token: RefreshToken) -> None:
    if isinstance(storage, DynamoStorage):
        storage.sessions.start(session, token)
        table = storage.tables.sessions
        _remove(storage, table, session.id, "user_agent", "address", "last_used_at")
        return
    db = _database(storage)
    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO sessions (id, user_id, scope, created_at, revoked_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                session.id,
                session.user_id,
                " ".join(sorted(session.scopes)),
                db.time(session.created_at),
                db.time(session.revoked_at),
            ),
        )
        conn.execute(
            "INSERT INTO refresh_tokens (id, session_id, secret_hash, created_at, expires_at,"
            " used_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.session_id,
                token.secret_hash,
                db.time(token.created_at),
                db.time(token.expires_at),
                db.time(token.used_at),
            ),
        )


def alembic_config() -> "Config":
    """Alembic's configuration as PostgresStorage._migrate makes it."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("nimbus.storage") / "migrations"))
    return config


def alembic_downgrade(url: str, target: str) -> None:
    """Alembic's downgrade to `target`, as PostgresStorage._migrate runs an upgrade."""
    from alembic import command
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    engine = create_engine(_sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, target)
            connection.commit()
    finally:
        engine.dispose()


def alembic_head() -> str:
    """The newest Alembic revision, where create_schema brings PostgreSQL."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _database(storage: Storage) -> Database:
    assert isinstance(storage, SqlStores), storage
    return cast(Database, storage)


def _remove(storage: DynamoStorage, table: str, item_id: str, *names: str) -> None:
    storage.client.call(
        "UpdateItem",
        TableName=table,
        Key={"id": string(item_id)},
        UpdateExpression="REMOVE " + ", ".join(names),
    )
    item = storage.client.call(
        "GetItem", TableName=table, Key={"id": string(item_id)}, ConsistentRead=True
    )["Item"]
    assert not set(names) & set(item), item  # written as before: without them
