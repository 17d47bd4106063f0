"""The shared SQL's `?` placeholders reach PostgreSQL as psycopg's, and nothing else changes:
a `?` or a `%` inside a quoted literal stays as written."""

from pathlib import Path

from nimbus.storage.postgres import PostgresStorage, psycopg_sql
from tests.backends import database_url


def test_placeholders_become_psycopgs_and_literals_stay() -> None:
    assert psycopg_sql("SELECT * FROM t WHERE a = ? AND b = ?") == (
        "SELECT * FROM t WHERE a = %s AND b = %s"
    )
    assert psycopg_sql("SELECT '?', 'it''s ?', '100%' WHERE x LIKE ?") == (
        "SELECT '?', 'it''s ?', '100%%' WHERE x LIKE %s"
    )


def test_literals_with_marks_reach_postgresql_whole(tmp_path: Path) -> None:
    with database_url("postgresql", tmp_path) as url:
        storage = PostgresStorage(url)
        try:
            with storage.transaction() as conn:
                row = conn.execute(
                    "SELECT '?' AS mark, 'it''s 100%' AS text, ? AS param, ? LIKE 'a%' AS liked",
                    ("given", "abc"),
                ).fetchone()
            assert row == {"mark": "?", "text": "it's 100%", "param": "given", "liked": True}
        finally:
            storage.close()
