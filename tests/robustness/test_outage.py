"""A store that goes away: requests get 503 JSON (not a hang, not a 500, not a 401), the
process stays up, and it serves again by itself once the store is back."""

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nimbus.bootstrap import build
from nimbus.storage import open_storage
from tests.api.test_metrics import TOKEN
from tests.robustness.private_stores import private_moto, private_postgres
from tests.support import PASSWORD, live_server, log_in, make_settings, sign_up

# A request must finish well inside this while the store is down (the store's own timeouts are
# far shorter): a hung request fails the test instead of passing late.
REQUEST_BOUND_SECONDS = 15
RECOVERY_BOUND_SECONDS = 60


class Store:
    def __init__(self, url: str, stop: Callable[[], None], start: Callable[[], None]) -> None:
        self.url, self.stop, self.start = url, stop, start


@contextmanager
def _postgres() -> Iterator[Store]:
    with private_postgres() as server:
        yield Store(server.url, server.stop, server.start)


@contextmanager
def _dynamodb() -> Iterator[Store]:
    with private_moto() as server:
        url = f"dynamodb://?region=us-east-1&table_prefix=outage-&endpoint_url={server.endpoint}"
        try:
            yield Store(url, server.stop, server.start)
        finally:
            _drop_tables(url)


def _drop_tables(url: str) -> None:
    storage = open_storage(url)
    try:
        storage.drop_schema()
    finally:
        storage.close()


STORES: dict[str, Callable[[], AbstractContextManager[Store]]] = {
    "postgresql": _postgres,
    "dynamodb": _dynamodb,
}


# The kinds of failure an unreachable store is counted as (nimbus.metrics.store_error).
STORE_ERRORS = {"postgresql": {"connection", "pool_timeout"}, "dynamodb": {"unreachable"}}
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def _store_errors(text: str) -> dict[str, float]:
    return {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "nimbus_store_errors_total"
    }


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.request.url, response.text)
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "message": "The service is temporarily unavailable",
        "code": "unavailable",
    }


def _requests(uid: str, auth: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """One of each kind: a read, a list, a write, a login, a signup, a public read."""
    return [
        ("GET", "/health/ready", {}),
        ("GET", f"/todos/{uid}", {"headers": auth}),
        ("GET", "/todos", {"headers": auth}),
        ("POST", "/todos", {"headers": auth, "json": {"description": "during the outage"}}),
        ("PATCH", f"/todos/{uid}", {"headers": auth, "json": {"state": "started"}}),
        ("POST", "/login", {"json": {"username": "alice", "password": PASSWORD}}),
        ("POST", "/users", {"json": {"username": "newcomer", "password": PASSWORD}}),
        ("GET", "/messages", {}),
    ]


@pytest.mark.parametrize("backend", list(STORES))
def test_an_unreachable_store_is_503_and_service_comes_back_by_itself(
    backend: str, tmp_path: Path
) -> None:
    with STORES[backend]() as store:
        container = build(make_settings(tmp_path / "data", database_url=store.url,
                                        database_timeout=1, metrics_token=TOKEN))  # fmt: skip
        try:
            with (
                live_server(container) as url,
                httpx.Client(base_url=url, timeout=REQUEST_BOUND_SECONDS) as client,
            ):
                sign_up(client, "alice")
                auth = {"Authorization": f"Bearer {log_in(client, 'alice')}"}
                todo = client.post("/todos", json={"description": "kept"}, headers=auth).json()

                store.stop()
                for method, path, options in _requests(todo["uid"], auth):
                    _assert_unavailable(client.request(method, path, **options))
                assert client.get("/health").status_code == 200  # the process itself is fine
                # Each failure is counted by its kind.
                errors = _store_errors(client.get("/metrics", headers=SCRAPE).text)
                assert errors.keys() <= STORE_ERRORS[backend], errors
                assert sum(errors.values()) >= len(_requests(todo["uid"], auth)), errors

                store.start()
                deadline = time.monotonic() + RECOVERY_BOUND_SECONDS
                while True:
                    response = client.get(f"/todos/{todo['uid']}", headers=auth)
                    if response.status_code == 200:
                        break
                    _assert_unavailable(response)
                    assert time.monotonic() < deadline, "no recovery without a restart"
                    time.sleep(0.2)

                # Everything works again, and nothing written before the outage was lost.
                assert response.json() == todo
                assert client.get("/health/ready").status_code == 200
                assert log_in(client, "alice")
                created = client.post("/todos", json={"description": "after"}, headers=auth)
                assert created.status_code == 201, created.text
                listed = client.get("/todos", headers=auth).json()
                assert [t["description"] for t in listed] == ["after", "kept"]
        finally:
            container.close()
