"""build() wires a store the test brings instead of the one the settings name."""

from pathlib import Path

import httpx

from nimbus.bootstrap import build
from nimbus.storage import open_storage
from tests.factories import an_account
from tests.support import live_server, make_settings


def test_build_takes_a_store_of_the_tests_own(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'own.db'}")
    container = build(make_settings(tmp_path / "data"), storage=storage)
    try:
        assert container.storage is storage
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as client:
            headers = an_account(client, "alice").headers
            assert client.post("/todos", json={"description": "d"}, headers=headers).is_success
            alice = client.get("/users/me", headers=headers).json()["user"]["id"]
        page = storage.todos.list(alice, state=None, limit=5, cursor=None)
        assert [todo.description for todo in page.items] == ["d"]
    finally:
        container.close()
    assert not (tmp_path / "data" / "nimbus.db").exists()
