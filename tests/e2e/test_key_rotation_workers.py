"""`nimbus keys rotate` against a running `nimbus serve --workers 2`, on every backend: both
workers learn the new key from the store, sign with it once it is published, and every token
either worker signed, before the rotation or after, passes on both."""

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest

from nimbus.domain.signing_keys import KeyState
from tests.backends import BACKENDS, database_url
from tests.support import PASSWORD, Served, nimbus_serve, run_cli

USERS = 6
STATES = {state.value for state in KeyState}


@pytest.fixture(params=BACKENDS)
def two_workers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Served, dict[str, str]]]:
    with database_url(request.param, tmp_path) as database:
        env = {"NIMBUS_DATABASE_URL": database, "NIMBUS_SIGNING_KEY_RELOAD": "1"}
        with nimbus_serve(
            tmp_path / "data",
            "--workers",
            "2",
            NIMBUS_DATABASE_URL=database,
            NIMBUS_SIGNING_KEY_RELOAD="1",
        ) as served:
            yield served, env


def kid(token: str) -> str:
    value: str = jwt.get_unverified_header(token)["kid"]
    return value


def log_in(base: str, n: int) -> str:
    # A client, and so a connection, per call: each may land on either worker.
    with httpx.Client(base_url=base, timeout=60) as client:
        response = client.post("/login", json={"username": f"user{n}", "password": PASSWORD})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def passes(base: str, token: str) -> bool:
    with httpx.Client(base_url=base, timeout=60) as client:
        return (
            client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        )


def test_a_rotation_holds_across_workers(two_workers: tuple[Served, dict[str, str]]) -> None:
    served, env = two_workers
    base = served.url
    with httpx.Client(base_url=base, timeout=60) as client:
        for n in range(USERS):
            response = client.post("/users", json={"username": f"user{n}", "password": PASSWORD})
            assert response.status_code == 201, response.text
    with ThreadPoolExecutor(max_workers=USERS) as pool:
        before = list(pool.map(lambda n: log_in(base, n), range(USERS)))
    [root_kid] = {kid(token) for token in before}

    rotated = run_cli(served.data_dir, "keys", "rotate", env=env)
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.split()[3]
    assert new_kid != root_kid
    assert "signs from" in rotated.stdout

    # Every worker signs with the new key once it is published (RELOAD + 2 s after it was made).
    deadline = time.monotonic() + 60
    after: list[str] = []
    while len(after) < 2 * USERS and time.monotonic() < deadline:
        with ThreadPoolExecutor(max_workers=USERS) as pool:
            tokens = list(pool.map(lambda n: log_in(base, n), range(USERS)))
        after = [token for token in tokens if kid(token) == new_kid] + after
        time.sleep(0.2)
    assert len(after) >= 2 * USERS

    # Each token is tried several times, a new connection each: both workers see each one.
    checks = [token for token in before + after for _ in range(4)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(lambda token: passes(base, token), checks))

    listed = run_cli(served.data_dir, "keys", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    states = [
        (line.split()[0], next(word for word in line.split() if word in STATES))
        for line in listed.stdout.splitlines()
    ]
    assert states == [(root_kid, "verifying"), (new_kid, "signing")], listed.stdout
