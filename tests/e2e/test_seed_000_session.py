"""Seed 000's documented session, run with HTTPie against a real `nimbus serve`."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backends import BACKENDS, database_url
from tests.support import cli_env, nimbus_serve, run_cli

HTTP = str(Path(sys.executable).with_name("http"))
# The seed's demo password, "mypassword", is a common one: the demo runs with the list off.
DEMO = {"NIMBUS_PASSWORD_BLOCKLIST": "false"}


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    with database_url(request.param, tmp_path) as database:
        with nimbus_serve(tmp_path / "data", NIMBUS_DATABASE_URL=database) as served:
            yield served.url, served.data_dir, database
        assert "mypassword" not in served.log


def http(tmp_path: Path, *args: str, stdin: str | None = None) -> tuple[int, Any]:
    """Run HTTPie as the seed does; returns its exit status and the JSON it printed."""
    result = subprocess.run(
        [HTTP, "--check-status", *([] if stdin is not None else ["--ignore-stdin"]), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(tmp_path, HTTPIE_CONFIG_DIR=str(tmp_path / "httpie")),
        timeout=60,
        check=False,
    )
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else None


def test_the_seed_000_session_works_as_written(
    server: tuple[str, Path, str], tmp_path: Path
) -> None:
    url, data_dir, database = server
    created = run_cli(
        data_dir, "users", "create", "--username", "myusername", "--password-stdin",
        stdin="mypassword\n", env={"NIMBUS_DATABASE_URL": database, **DEMO},
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    verified = run_cli(
        data_dir, "users", "test-password", "--username", "myusername", "--password-stdin",
        stdin="mypassword\n", env={"NIMBUS_DATABASE_URL": database},
    )  # fmt: skip
    assert verified.stdout == "Password verified.\n"

    status, body = http(
        tmp_path,
        "POST",
        f"{url}/login/",
        stdin='{"username": "myusername", "password": "mypassword"}',
    )
    assert status == 0
    token = body["token"]

    status, body = http(tmp_path, f"{url}/todos/", f"Authorization: {token}")
    assert (status, body) == (0, [])

    status, body = http(tmp_path, f"{url}/todos/")
    assert status == 4  # HTTPie's exit status for a 4xx
    assert body["message"] == "Unauthorized"

    status, todo = http(
        tmp_path, "POST", f"{url}/todos/", f"Authorization: {token}",
        stdin='{"description": "My first Todo", "metadata": {}}',
    )  # fmt: skip
    assert status == 0
    uid = todo["uid"]

    status, listed = http(tmp_path, f"{url}/todos/", f"Authorization: {token}")
    fields = ("description", "metadata", "state", "uid", "username")
    assert [tuple(t[f] for f in fields) for t in listed] == [
        ("My first Todo", {}, "unstarted", uid, "myusername")
    ]

    status, _ = http(
        tmp_path, "PUT", f"{url}/todos/{uid}", f"Authorization: {token}",
        stdin='{"state": "completed"}',
    )  # fmt: skip
    assert status == 0

    status, body = http(tmp_path, f"{url}/todos/{uid}", f"Authorization: {token}")
    assert status == 0
    assert {f: body[f] for f in fields} == {
        "description": "My first Todo",
        "metadata": {},
        "state": "completed",
        "uid": uid,
        "username": "myusername",
    }
