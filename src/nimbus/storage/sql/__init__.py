"""The stores of the relational backends, written once over a small database interface.

Statements use `?` placeholders; each backend's Database supplies connections (translating
its driver's errors into domain errors) and adapts values: SQLite keeps times and JSON as
text, PostgreSQL as timestamptz and jsonb.
"""

from nimbus.storage.sql.base import Database
from nimbus.storage.sql.credentials import SqlCredentialStore
from nimbus.storage.sql.messages import SqlMessageStore
from nimbus.storage.sql.products import SqlProductStore
from nimbus.storage.sql.sessions import SqlRateLimitStore, SqlSessionStore
from nimbus.storage.sql.todos import SqlTodoStore
from nimbus.storage.sql.users import SqlUserStore

__all__ = [
    "Database",
    "SqlCredentialStore",
    "SqlMessageStore",
    "SqlProductStore",
    "SqlRateLimitStore",
    "SqlSessionStore",
    "SqlTodoStore",
    "SqlUserStore",
]
