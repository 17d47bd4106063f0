"""The stores of the relational backends, written once over a small database interface.

Statements use `?` placeholders; each backend's Database supplies connections (translating
its driver's errors into domain errors) and adapts values: SQLite keeps times and JSON as
text, PostgreSQL as timestamptz and jsonb.
"""

from typing import cast

from nimbus.storage.sql.audit import SqlAuditStore
from nimbus.storage.sql.base import Database
from nimbus.storage.sql.credentials import SqlCredentialStore
from nimbus.storage.sql.factors import SqlFactorStore
from nimbus.storage.sql.messages import SqlMessageStore
from nimbus.storage.sql.passkeys import SqlPasskeyStore
from nimbus.storage.sql.products import SqlProductStore
from nimbus.storage.sql.sessions import SqlRateLimitStore, SqlSessionStore
from nimbus.storage.sql.signing_keys import SqlSigningKeyStore
from nimbus.storage.sql.todos import SqlTodoStore
from nimbus.storage.sql.users import SqlUserStore


class SqlStores:
    """The stores of a relational backend, wired once over the Database it is."""

    users: SqlUserStore
    todos: SqlTodoStore
    messages: SqlMessageStore
    products: SqlProductStore
    credentials: SqlCredentialStore
    signing_keys: SqlSigningKeyStore
    sessions: SqlSessionStore
    factors: SqlFactorStore
    passkeys: SqlPasskeyStore
    rate_limits: SqlRateLimitStore
    audit: SqlAuditStore

    def _wire_stores(self) -> None:
        db = cast(Database, self)  # each subclass implements Database
        self.users = SqlUserStore(db)
        self.todos = SqlTodoStore(db)
        self.messages = SqlMessageStore(db)
        self.products = SqlProductStore(db)
        self.credentials = SqlCredentialStore(db)
        self.signing_keys = SqlSigningKeyStore(db)
        self.sessions = SqlSessionStore(db)
        self.factors = SqlFactorStore(db)
        self.passkeys = SqlPasskeyStore(db)
        self.rate_limits = SqlRateLimitStore(db)
        self.audit = SqlAuditStore(db)


__all__ = [
    "Database",
    "SqlAuditStore",
    "SqlCredentialStore",
    "SqlFactorStore",
    "SqlMessageStore",
    "SqlPasskeyStore",
    "SqlProductStore",
    "SqlRateLimitStore",
    "SqlSessionStore",
    "SqlSigningKeyStore",
    "SqlStores",
    "SqlTodoStore",
    "SqlUserStore",
]
