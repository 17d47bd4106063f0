"""Several worker processes on one store behave as one service."""

import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.backends import BACKENDS, database_url
from tests.support import PASSWORD, nimbus_serve


@pytest.fixture(params=BACKENDS)
def two_workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with (
        database_url(request.param, tmp_path) as database,
        nimbus_serve(tmp_path / "data", "--workers", "2", NIMBUS_DATABASE_URL=database) as served,
    ):
        yield served.url


def test_two_workers_share_users_keys_and_todos(two_workers: str) -> None:
    def sign_up_and_log_in(n: int) -> str:
        with httpx.Client(base_url=two_workers, timeout=60) as client:
            name = f"user{n}"
            assert client.post("/users", json={"username": name, "password": PASSWORD}).is_success
            response = client.post("/login", json={"username": name, "password": PASSWORD})
            token: str = response.json()["token"]
            return token

    with ThreadPoolExecutor(max_workers=6) as pool:
        tokens = list(pool.map(sign_up_and_log_in, range(6)))

    def create(i: int) -> str:
        headers = {"Authorization": tokens[i % len(tokens)]}
        with httpx.Client(base_url=two_workers, timeout=60) as client:
            response = client.post("/todos", json={"description": f"t{i}"}, headers=headers)
            assert response.status_code == 201, response.text
            uid: str = response.json()["uid"]
            return uid

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = set(pool.map(create, range(60)))

    listed: set[str] = set()
    with httpx.Client(base_url=two_workers, timeout=60) as client:
        # Each request may land on either worker: a token from one must pass on the other.
        for token in tokens:
            for _ in range(4):
                response = client.get(
                    "/todos", params={"limit": 100}, headers={"Authorization": token}
                )
                assert response.status_code == 200
            listed |= {todo["uid"] for todo in response.json()}
    assert listed == created


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_is_a_graceful_shutdown_with_exit_code_0(tmp_path: Path, workers: str) -> None:
    with nimbus_serve(tmp_path / "data", "--workers", workers) as served:
        assert httpx.get(f"{served.url}/health").status_code == 200
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=15) == 0
    assert "Finished server process" in served.log or "Stopping parent process" in served.log
