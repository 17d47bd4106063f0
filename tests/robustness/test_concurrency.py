"""Concurrent writers over real HTTP, on every backend: no lost update, one winner per name."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from tests.factories import Account
from tests.support import PASSWORD

Headers = dict[str, str]
T = TypeVar("T")

CLIENTS = 8


def _in_parallel(count: int, work: Callable[[int, httpx.Client], T], base_url: str) -> list[T]:
    """Run `work(i, client)` on `count` threads at once, each with its own connection."""

    def run(i: int) -> T:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            return work(i, http)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def _new_todo(client: httpx.Client, headers: Headers) -> str:
    response = client.post(
        "/todos", json={"description": "shared", "metadata": {"log": []}}, headers=headers
    )
    assert response.status_code == 201, response.text
    uid: str = response.json()["uid"]
    return uid


def test_updates_from_the_same_version_apply_exactly_once(
    client: httpx.Client, alice: Account
) -> None:
    """Each round every client reads the same version, then all write with If-Match at once:
    one applies, the rest get 412, and the history holds exactly the winners."""
    uid = _new_todo(client, alice.headers)
    rounds = 4
    barrier = threading.Barrier(CLIENTS, timeout=60)

    def writer(i: int, http: httpx.Client) -> list[int]:
        statuses = []
        for r in range(rounds):
            read = http.get(f"/todos/{uid}", headers=alice.headers)
            barrier.wait()  # every read of this round is done before any write starts
            log = [*read.json()["metadata"]["log"], f"{r}:{i}"]
            response = http.patch(
                f"/todos/{uid}",
                json={"metadata": {"log": log}},
                headers={**alice.headers, "If-Match": read.headers["ETag"]},
            )
            assert response.status_code in (200, 412), response.text
            if response.status_code == 412:
                assert response.json()["code"] == "precondition_failed"
            statuses.append(response.status_code)
            barrier.wait()  # every write of this round is done before the next read
        return statuses

    results = _in_parallel(CLIENTS, writer, str(client.base_url))
    for r in range(rounds):
        assert sorted(statuses[r] for statuses in results) == [200] + [412] * (CLIENTS - 1)
    final = client.get(f"/todos/{uid}", headers=alice.headers).json()
    assert final["version"] == 1 + rounds
    winners = [f"{r}:{i}" for r in range(rounds) for i in range(CLIENTS) if results[i][r] == 200]
    assert final["metadata"]["log"] == winners


def test_clients_that_retry_on_412_lose_no_update(client: httpx.Client, alice: Account) -> None:
    """Free-running read-modify-write loops: every update that got 200 is in the final todo,
    in the order of the versions it was given."""
    uid = _new_todo(client, alice.headers)
    per_client = 3

    def writer(i: int, http: httpx.Client) -> list[tuple[int, str]]:
        applied: list[tuple[int, str]] = []
        attempts = 0
        while len(applied) < per_client:
            attempts += 1
            assert attempts <= 500, "no progress"
            read = http.get(f"/todos/{uid}", headers=alice.headers)
            entry = f"{i}.{len(applied)}"
            response = http.patch(
                f"/todos/{uid}",
                json={"metadata": {"log": [*read.json()["metadata"]["log"], entry]}},
                headers={**alice.headers, "If-Match": read.headers["ETag"]},
            )
            assert response.status_code in (200, 412), response.text
            if response.status_code == 200:
                applied.append((response.json()["version"], entry))
        return applied

    results = _in_parallel(CLIENTS, writer, str(client.base_url))
    final = client.get(f"/todos/{uid}", headers=alice.headers).json()
    assert final["version"] == 1 + CLIENTS * per_client
    by_version = sorted(update for applied in results for update in applied)
    assert [version for version, _ in by_version] == list(range(2, 2 + CLIENTS * per_client))
    assert final["metadata"]["log"] == [entry for _, entry in by_version]


def test_concurrent_deletes_with_the_same_version_succeed_once(
    client: httpx.Client, alice: Account
) -> None:
    uid = _new_todo(client, alice.headers)
    barrier = threading.Barrier(CLIENTS, timeout=60)

    def deleter(i: int, http: httpx.Client) -> int:
        barrier.wait()
        return http.delete(
            f"/todos/{uid}", headers={**alice.headers, "If-Match": '"1"'}
        ).status_code

    statuses = _in_parallel(CLIENTS, deleter, str(client.base_url))
    # A loser finds the todo gone (404) or, if it looked before the delete landed, stale (412).
    assert statuses.count(204) == 1
    assert set(statuses) <= {204, 404, 412}
    assert client.get(f"/todos/{uid}", headers=alice.headers).status_code == 404


def test_one_of_many_signups_with_the_same_username_wins(client: httpx.Client) -> None:
    barrier = threading.Barrier(CLIENTS, timeout=60)

    def sign_up(i: int, http: httpx.Client) -> tuple[int, Any]:
        # Differently cased: usernames are unique regardless of case.
        username = "Racer" if i % 2 else "racer"
        barrier.wait()
        response = http.post("/users", json={"username": username, "password": f"{PASSWORD} {i}"})
        return response.status_code, response.json()

    results = _in_parallel(CLIENTS, sign_up, str(client.base_url))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == CLIENTS - 1, statuses
    assert all(body["code"] == "conflict" for status, body in results if status == 409)
    winner = statuses.index(201)
    # Only the winner's password opens the account: no loser overwrote any part of it.
    logins = [
        client.post("/login", json={"username": "racer", "password": f"{PASSWORD} {i}"})
        for i in (winner, (winner + 1) % CLIENTS)
    ]
    assert [login.status_code for login in logins] == [200, 401]
    assert logins[0].json()["access_token"]


def test_one_of_many_signups_with_the_same_email_wins(client: httpx.Client) -> None:
    barrier = threading.Barrier(CLIENTS, timeout=60)

    def sign_up(i: int, http: httpx.Client) -> int:
        barrier.wait()
        body = {"username": f"user{i}", "password": PASSWORD, "email": "same@example.com"}
        return http.post("/users", json=body).status_code

    statuses = _in_parallel(CLIENTS, sign_up, str(client.base_url))
    assert sorted(statuses) == [201] + [409] * (CLIENTS - 1)
    # The losers left nothing behind: their usernames are still free.
    loser = statuses.index(409)
    assert client.post("/users", json={"username": f"user{loser}", "password": PASSWORD}).is_success
