"""SQLite's hand-written schema and PostgreSQL's Alembic revisions describe the same tables:
the same columns, the same NOT NULLs, the same primary keys and unique column sets. A change
to one that the other lacks fails here."""

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from nimbus.storage import open_storage
from tests.backends import database_url

Shape = dict[str, Any]


def sqlite_shape(path: Path) -> dict[str, Shape]:
    conn = sqlite3.connect(path)
    try:
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )]  # fmt: skip
        shapes = {}
        for table in tables:
            columns = list(conn.execute(f"PRAGMA table_info({table})"))
            unique = set()
            for index in conn.execute(f"PRAGMA index_list({table})"):
                if index[2]:  # unique
                    info = conn.execute(f"PRAGMA index_info({index[1]})")
                    unique.add(frozenset(row[2] for row in info))
            primary = frozenset(c[1] for c in columns if c[5] > 0)
            shapes[table] = {
                "columns": {c[1]: bool(c[3]) or c[5] > 0 for c in columns},
                "primary": primary,
                "unique": unique | {primary},
            }
        return shapes
    finally:
        conn.close()


def postgres_shape(url: str) -> dict[str, Shape]:
    with psycopg.connect(url) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name <> 'alembic_version'"
        )]  # fmt: skip
        shapes = {}
        for table in tables:
            columns = conn.execute(
                "SELECT column_name, is_nullable FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = %s",
                (table,),
            ).fetchall()
            indexes = conn.execute(
                "SELECT i.indisprimary, array_agg(a.attname::text) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)"
                " WHERE n.nspname = current_schema() AND c.relname = %s AND i.indisunique"
                " GROUP BY i.indexrelid, i.indisprimary",
                (table,),
            ).fetchall()
            shapes[table] = {
                "columns": {name: nullable == "NO" for name, nullable in columns},
                "primary": next(frozenset(cols) for primary, cols in indexes if primary),
                "unique": {frozenset(cols) for _, cols in indexes},
            }
        return shapes


def test_sqlite_and_postgresql_schemas_agree(tmp_path: Path) -> None:
    lite = open_storage(f"sqlite:///{tmp_path / 'store.db'}")
    lite.create_schema()
    lite.close()
    with database_url("postgresql", tmp_path) as url:
        storage = open_storage(url)
        try:
            storage.create_schema()
            relational = postgres_shape(url)
        finally:
            storage.close()
    embedded = sqlite_shape(tmp_path / "store.db")
    assert sorted(embedded) == sorted(relational)
    assert len(embedded) >= 9
    for table in embedded:
        assert embedded[table] == relational[table], table
