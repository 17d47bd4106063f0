"""PostgreSQL connections that die while pooled (the server restarted, an administrator ended
their backends): nimbus takes them without a ping, so the first statement finds them dead;
it is run again on a live connection, and the request succeeds instead of a 503. A write
retried this way is stored once."""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from nimbus.storage.postgres import PostgresStorage
from tests.backends import database_url
from tests.factories import a_todo, a_user
from tests.support import make_settings, serve, user_token


@pytest.fixture
def named_url(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A PostgreSQL store's URL whose connections carry an application name of their own,
    so that the test ends only theirs; and the URL to end them from."""
    with database_url("postgresql", tmp_path) as url:
        name = f"nimbus-{uuid.uuid4().hex[:12]}"
        yield f"{url}&application_name={name}", url


def _end_backends(url: str, application_name: str) -> int:
    """End every backend of connections with this name, as a server restart does; returns
    how many, once they are gone. A connection the pool was still opening when the first
    ones ended is ended too, as it would not have outlived a restart."""
    ended: set[int] = set()
    with psycopg.connect(url, autocommit=True) as admin:
        deadline = time.monotonic() + 10
        while True:
            rows = admin.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (application_name,),
            ).fetchall()
            if not rows:
                return len(ended)
            ended.update(int(pid) for pid, _ in rows)
            assert time.monotonic() < deadline, "the ended backends did not exit"
            time.sleep(0.02)


def _application_name(url: str) -> str:
    return url.rpartition("application_name=")[2]


def test_a_read_on_a_pooled_connection_whose_backend_ended_is_served_on_a_fresh_one(
    named_url: tuple[str, str],
) -> None:
    url, admin_url = named_url
    storage = PostgresStorage(url)
    try:
        storage.create_schema()
        before = storage.query_one("SELECT pg_backend_pid() AS pid")
        assert before is not None
        assert _end_backends(admin_url, _application_name(url)) >= 1

        after = storage.query_one("SELECT pg_backend_pid() AS pid")
        assert after is not None
        assert after["pid"] != before["pid"]
        assert storage.query("SELECT 1 AS one") == [{"one": 1}]
    finally:
        storage.close()


def test_a_write_on_a_pooled_connection_whose_backend_ended_is_stored_once(
    named_url: tuple[str, str],
) -> None:
    url, admin_url = named_url
    storage = PostgresStorage(url)
    try:
        storage.create_schema()
        owner = a_user()
        storage.users.add(owner)
        assert _end_backends(admin_url, _application_name(url)) >= 1

        todo = a_todo(owner, description="written first thing")
        storage.todos.add(todo)  # its BEGIN meets the dead connection
        assert storage.todos.get(owner.id, todo.uid) == todo
        stored = storage.query("SELECT uid FROM todos WHERE owner = ?", (owner.id,))
        assert stored == [{"uid": todo.uid}]
    finally:
        storage.close()


def test_requests_after_every_pooled_backend_ended_succeed(
    named_url: tuple[str, str], tmp_path: Path
) -> None:
    url, admin_url = named_url
    for client in serve(make_settings(tmp_path / "data", database_url=url)):
        headers = user_token(client, "alice")
        created = client.post("/todos", json={"description": "kept"}, headers=headers)
        assert created.status_code == 201, created.text
        # Several connections in the pool, all of them to be found dead.
        with httpx.Client(base_url=str(client.base_url), timeout=30) as other:
            for _ in range(3):
                assert other.get("/messages").status_code == 200
        assert _end_backends(admin_url, _application_name(url)) >= 1

        read = client.get(f"/todos/{created.json()['uid']}", headers=headers)
        assert read.status_code == 200, read.text
        assert read.json() == created.json()

        assert _end_backends(admin_url, _application_name(url)) >= 1
        written = client.post("/todos", json={"description": "after"}, headers=headers)
        assert written.status_code == 201, written.text
        listed = client.get("/todos", headers=headers).json()
        assert [todo["description"] for todo in listed] == ["after", "kept"]
