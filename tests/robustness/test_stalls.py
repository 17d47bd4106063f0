"""A store that stalls (a lock held elsewhere) costs a request a 503 with Retry-After within
5 s, and the routes that do not touch what is stalled keep working."""

import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from nimbus.bootstrap import build
from tests.backends import database_url
from tests.support import live_server, make_settings, nimbus_serve, serve, user_token


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[tuple[httpx.Client, str]]:
    with database_url("postgresql", tmp_path) as url:
        for client in serve(make_settings(tmp_path / "data", database_url=url)):
            yield client, url


def test_a_lock_held_on_todos_is_a_bounded_503_and_other_routes_work(
    postgres: tuple[httpx.Client, str],
) -> None:
    client, url = postgres
    headers = user_token(client, "alice")
    assert client.post("/todos", json={"description": "d"}, headers=headers).status_code == 201
    with psycopg.connect(url) as holder:
        holder.execute("LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        stalled = client.get("/todos", headers=headers)
        waited = time.monotonic() - started
        assert stalled.status_code == 503
        assert stalled.headers["Retry-After"] == "5"
        assert stalled.json()["code"] == "unavailable"
        assert waited < 5
        # Every pooled connection that waited was given back: other routes still answer.
        for _ in range(12):
            assert client.get("/users/me", headers=headers).status_code == 200
        assert client.get("/messages").status_code == 200
    assert client.get("/todos", headers=headers).status_code == 200


def test_the_sqlite_write_lock_held_elsewhere_is_a_bounded_503(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    for client in serve(make_settings(tmp_path / "data", database_url=f"sqlite:///{path}")):
        headers = user_token(client, "alice")
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            stalled = client.post("/todos", json={"description": "d"}, headers=headers)
            assert stalled.status_code == 503
            assert stalled.headers["Retry-After"] == "5"
            assert time.monotonic() - started < 5
            assert client.get("/todos", headers=headers).status_code == 200  # reads go on
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.post("/todos", json={"description": "d"}, headers=headers).status_code == 201


def test_readiness_says_unready_while_the_store_takes_no_writes(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    for client in serve(make_settings(tmp_path / "data", database_url=f"sqlite:///{path}")):
        assert client.get("/health/ready").status_code == 200
        holder = sqlite3.connect(path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            started = time.monotonic()
            unready = client.get("/health/ready")
            assert unready.status_code == 503
            assert time.monotonic() - started < 2  # a probe waits briefly, not the busy timeout
            assert client.get("/health").status_code == 200
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert client.get("/health/ready").status_code == 200


def test_a_dynamodb_endpoint_that_never_answers_is_a_503_within_5_s(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        url = f"dynamodb://?region=us-east-1&table_prefix=stall-&endpoint_url={endpoint}"
        container = build(make_settings(tmp_path / "data", database_url=url), provision=False)
        with live_server(container) as base, httpx.Client(base_url=base, timeout=30) as client:
            started = time.monotonic()
            stalled = client.get("/messages")
            assert stalled.status_code == 503
            assert stalled.headers["Retry-After"] == "5"
            assert time.monotonic() - started < 5
        container.close()


def test_a_full_disk_makes_writes_a_503_and_the_store_unready(tmp_path: Path) -> None:
    """A file-size limit stands in for a full disk: the kernel refuses to grow the store's
    files (EFBIG, as ENOSPC), SQLite reports "database or disk is full". Writes then get a
    503, readiness says unready, and reads and what was acknowledged stay."""
    data_dir = tmp_path / "data"
    with (
        nimbus_serve(
            data_dir, max_file_bytes=512 * 1024, NIMBUS_MESSAGES_MAX_PER_ACCOUNT="100000"
        ) as served,
        httpx.Client(base_url=served.url, timeout=30) as client,
    ):
        headers = user_token(client, "writer")
        assert client.get("/health/ready").status_code == 200
        acknowledged = 0
        for n in range(2000):  # 1 KB each: the limit is reached long before
            answer = client.post("/messages", json={"text": f"{n} " + "x" * 990}, headers=headers)
            if answer.status_code != 201:
                break
            acknowledged += 1
        assert answer.status_code == 503, answer.text
        assert answer.json()["code"] == "unavailable"
        assert answer.headers["Retry-After"]
        assert acknowledged > 10  # each write appends a few 4 KiB pages to the WAL

        # A refused write leaves its frames' room in the WAL to the next write, and the
        # readiness probe's one row may fit there: small writes then take what room is left.
        for _ in range(50):
            unready = client.get("/health/ready")
            if unready.status_code != 200:
                break
            small = client.post("/messages", json={"text": "."}, headers=headers)
            acknowledged += small.status_code == 201
        assert unready.status_code == 503
        assert unready.headers["Retry-After"]
        assert client.get("/health").status_code == 200
        kept, cursor = 0, None
        while True:
            page = client.get(
                "/messages", params={"limit": 100, "cursor": cursor} if cursor else {"limit": 100}
            )
            assert page.status_code == 200
            kept += len(page.json())
            link = page.links.get("next")
            if not link:
                break
            cursor = httpx.URL(link["url"]).params["cursor"]
        assert kept == acknowledged
    # Each 503 is logged once, with the error SQLite raised beneath it.
    records = [r for r in served.records() if str(r["message"]).startswith("503 on ")]
    routes = [str(record["message"]).partition(":")[0] for record in records]
    assert routes[0] == "503 on POST /messages", served.log
    assert routes[-1] == "503 on GET /health/ready", served.log
    assert set(routes) == {"503 on POST /messages", "503 on GET /health/ready"}, served.log
    assert routes.count("503 on GET /health/ready") == 1, served.log
    assert all("\nsqlite3.OperationalError: " in record["exception"] for record in records)
