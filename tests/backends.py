"""Where each storage backend lives for tests, and a private corner of it per test."""

import atexit
import functools
import os
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from tests.moto_server import MotoServer
from tests.support import free_port

BACKENDS = ["sqlite", "postgresql", "dynamodb"]

# AWS clients sign even for a local DynamoDB-API server; these credentials reach nothing real.
for _name, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                      ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
    os.environ.setdefault(_name, _value)

# The machine's PostgreSQL: 127.0.0.1:5432, trust auth, database "test".
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@functools.cache
def postgres_url() -> str:
    """NIMBUS_TEST_POSTGRES_URL, else the local server, else a private one from `pgserver`
    (PostgreSQL binaries from PyPI), so the suite runs on a machine with no PostgreSQL."""
    configured = os.environ.get("NIMBUS_TEST_POSTGRES_URL")
    if configured:
        return configured
    try:
        psycopg.connect(LOCAL_POSTGRES, connect_timeout=3).close()
        return LOCAL_POSTGRES
    except psycopg.OperationalError:
        pass
    try:
        import pgserver
    except ImportError:
        # Its wheels are for CPython 3.11 and 3.12 on x86_64 (and macOS, Windows) only.
        pytest.fail(
            f"The PostgreSQL tests need a server: none answers at {LOCAL_POSTGRES}, and the"
            " fallback, a private server from the pgserver package, is not installed (it has"
            " no wheel for this Python or machine). Name one in NIMBUS_TEST_POSTGRES_URL, or"
            " run one on 127.0.0.1:5432 that trusts local connections and has a database"
            ' "test" (user postgres), for example: docker run -d -p 127.0.0.1:5432:5432'
            " -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16",
            pytrace=False,
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        server = pgserver.get_server(  # type: ignore[attr-defined]
            tempfile.mkdtemp(prefix="nimbus-pg-"), cleanup_mode="delete"
        )
    atexit.register(server.cleanup)
    uri: str = server.get_uri()
    return uri


@functools.cache
def dynamodb_endpoint() -> str:
    """moto's DynamoDB-API server on 127.0.0.1, shared by the tests, stopped at exit."""
    server = MotoServer(free_port())
    server.start()
    atexit.register(server.stop)
    return server.endpoint


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A NIMBUS_DATABASE_URL for an empty store of this backend, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if backend == "dynamodb":
        prefix = f"t{uuid.uuid4().hex[:12]}-"
        url = (
            f"dynamodb://?region=us-east-1&table_prefix={prefix}&endpoint_url={dynamodb_endpoint()}"
        )
        try:
            yield url
        finally:
            from nimbus.storage import open_storage

            storage = open_storage(url)
            storage.drop_schema()
            storage.close()
        return
    server = postgres_url()
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in server else "?"
    try:
        yield f"{server}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
