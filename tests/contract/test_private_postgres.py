"""The PostgreSQL the tests start for themselves where none runs: Debian's binaries, on
127.0.0.1 and a free port, with a database "test" that nimbus can make its schema in."""

import psycopg

from nimbus.storage import open_storage
from tests.backends import debian_postgres


def test_the_tests_can_start_a_postgresql_of_their_own() -> None:
    url = debian_postgres()
    assert url is not None, "scripts/install --dev installs Debian's postgresql package"
    assert url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("test",)
    storage = open_storage(url)
    try:
        assert "todos" in storage.create_schema()
        storage.ping()
    finally:
        storage.close()
