"""`nimbus users set-password / disable / enable / delete`: the operator's account administration,
run as a person runs it, against a nimbus serving the same store over HTTP."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from tests.backends import BACKENDS, database_url
from tests.cli.terminal import terminal
from tests.support import PASSWORD, live_server, make_settings, run_cli, sign_up

NEW_PASSWORD = "a brand new passphrase"


class Site:
    """A nimbus on a store, over HTTP, and the environment `nimbus` needs for that store."""

    def __init__(self, http: httpx.Client, data_dir: Path, env: dict[str, str]) -> None:
        self.http = http
        self.data_dir = data_dir
        self.env = env

    def cli(self, *args: str, stdin: str = "") -> Any:
        return run_cli(self.data_dir, *args, stdin=stdin, env=self.env)

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.http.post("/login", json={"username": username, "password": password})

    def events(self, username: str, kind: str) -> list[dict[str, Any]]:
        listed = self.cli("audit", "list", "--json", "--user", username, "--kind", kind)
        assert listed.returncode == 0, listed.stderr
        return [json.loads(line) for line in listed.stdout.splitlines()]


def _site(backend: str, tmp_path: Path) -> Iterator[Site]:
    data_dir = tmp_path / "data"
    with database_url(backend, tmp_path) as url:
        container = build(make_settings(data_dir, database_url=url))
        try:
            with live_server(container) as base, httpx.Client(base_url=base, timeout=30) as http:
                yield Site(http, data_dir, {"NIMBUS_DATABASE_URL": url})
        finally:
            container.close()


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    yield from _site(request.param, tmp_path)


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Site]:
    """The same on SQLite only, for what no backend changes."""
    yield from _site("sqlite", tmp_path)


def _bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _admin(site: Site, username: str = "root") -> None:
    made = site.cli("users", "create", "--username", username, "--admin", "--password-stdin",
                    stdin=PASSWORD)  # fmt: skip
    assert made.returncode == 0, made.stderr


def test_disable_ends_the_sessions_and_enable_lets_the_user_back(site: Site) -> None:
    alice_id = sign_up(site.http, "alice")["id"]
    headers = _bearer(site.login("alice"))
    todo = site.http.post("/todos", json={"description": "kept"}, headers=headers)

    disabled = site.cli("users", "disable", "alice")
    assert disabled.returncode == 0, disabled.stderr
    assert disabled.stdout == f"Disabled alice ({alice_id}); its sessions have ended.\n"
    assert site.http.get("/users/me", headers=headers).status_code == 401
    refused = site.login("alice")
    assert (refused.status_code, refused.json()["code"]) == (403, "account_disabled")
    assert "  disabled : 20" in site.cli("users", "get", "alice").stdout
    assert site.cli("users", "list").stdout.splitlines()[0].endswith("alice  (disabled)")
    again = site.cli("users", "disable", "ALICE")
    assert (again.returncode, again.stdout) == (0, "alice is disabled already.\n")

    enabled = site.cli("users", "enable", "alice")
    assert (enabled.returncode, enabled.stdout) == (0, f"Enabled alice ({alice_id}).\n")
    fresh = _bearer(site.login("alice"))
    assert [t["uid"] for t in site.http.get("/todos", headers=fresh).json()] == [todo.json()["uid"]]
    assert "  disabled : no" in site.cli("users", "get", "alice").stdout
    assert site.cli("users", "enable", "alice").stdout == "alice is enabled already.\n"

    for kind in ("user.disabled", "user.enabled"):
        (event,) = site.events("alice", kind)
        assert (event["actor"], event["subject"]) == (None, alice_id)  # the operator


def test_the_last_enabled_administrator_cannot_be_disabled(site: Site) -> None:
    _admin(site)
    refused = site.cli("users", "disable", "root")
    assert refused.returncode == 1
    assert refused.stderr == "Error: This is the last administrator; make another one first\n"
    _admin(site, "ops")
    assert site.cli("users", "disable", "ops").returncode == 0
    # A disabled administrator is not another one.
    assert site.cli("users", "disable", "root").returncode == 1
    assert site.login("root").status_code == 200
    assert site.cli("users", "enable", "ops").returncode == 0
    assert site.cli("users", "disable", "root").returncode == 0
    assert site.login("root").status_code == 403


def test_set_password_replaces_it_and_ends_the_sessions(site: Site) -> None:
    alice_id = sign_up(site.http, "alice")["id"]
    headers = _bearer(site.login("alice"))
    result = site.cli("users", "set-password", "alice", "--password-stdin", stdin=NEW_PASSWORD)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Password set for alice ({alice_id}); its sessions have ended.\n"
    assert NEW_PASSWORD not in result.stdout + result.stderr
    assert site.http.get("/users/me", headers=headers).status_code == 401
    assert site.login("alice").status_code == 401
    assert site.login("alice", NEW_PASSWORD).status_code == 200
    (event,) = site.events("alice", "password.changed")
    assert (event["actor"], event["subject"], event["detail"]) == (None, alice_id, {})


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "Error: Choose a password of at least 8 characters\n"),
        ("nimbus-2024", "Error: That password is too common; choose another\n"),
        ("alice@example.com", "Error: Choose a password that is not your username or email\n"),
        ("", "Error: no password on standard input\n"),
    ],
)
def test_set_password_follows_the_password_policy(local: Site, password: str, message: str) -> None:
    sign_up(local.http, "alice", email="alice@example.com")
    headers = _bearer(local.login("alice"))
    refused = local.cli("users", "set-password", "alice", "--password-stdin", stdin=password)
    assert (refused.returncode, refused.stdout, refused.stderr) == (1, "", message)
    assert local.login("alice").status_code == 200  # the password is what it was
    assert local.http.get("/users/me", headers=headers).status_code == 200


def test_set_password_asks_twice_on_a_terminal(local: Site) -> None:
    sign_up(local.http, "alice")
    with terminal(local.data_dir, "users", "set-password", "alice", env=local.env) as screen:
        screen.expect("Password:")
        screen.type(NEW_PASSWORD)
        screen.expect("Repeat for confirmation:")
        screen.type(NEW_PASSWORD)
        assert screen.finish() == 0
    assert "Password set for alice" in screen.screen
    assert NEW_PASSWORD not in screen.screen  # hidden input is not echoed
    assert local.login("alice", NEW_PASSWORD).status_code == 200


def test_delete_needs_yes_without_a_terminal(site: Site) -> None:
    alice_id = sign_up(site.http, "alice")["id"]
    site.http.post("/todos", json={"description": "t"}, headers=_bearer(site.login("alice")))
    refused = site.cli("users", "delete", "alice", stdin="y\n")
    assert refused.returncode == 1
    assert refused.stderr == (
        "Error: deleting a user deletes its data: add --yes to confirm"
        " (standard input is not a terminal)\n"
    )
    assert site.login("alice").status_code == 200

    deleted = site.cli("users", "delete", "alice", "--yes")
    assert (deleted.returncode, deleted.stdout) == (0, f"Deleted alice ({alice_id})\n")
    assert site.login("alice").status_code == 401
    assert site.cli("users", "get", "alice").returncode == 1
    listed = site.cli("audit", "list", "--json", "--subject", alice_id, "--kind", "user.deleted")
    (event,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert event["actor"] is None  # the operator
    sign_up(site.http, "alice")  # the name is free again


@pytest.mark.parametrize("answer", ["n", "", "sure"])
def test_on_a_terminal_anything_but_yes_keeps_the_user(local: Site, answer: str) -> None:
    alice_id = sign_up(local.http, "alice")["id"]
    with terminal(local.data_dir, "users", "delete", "alice", env=local.env) as screen:
        screen.expect(
            f"Delete user alice ({alice_id}) with its todos, messages and sessions? [y/N]"
        )
        screen.type(answer)
        assert screen.finish() == 1
    assert "Error: Aborted: nothing deleted." in screen.screen
    assert local.login("alice").status_code == 200


@pytest.mark.parametrize("answer", ["y", "YES"])
def test_on_a_terminal_yes_deletes_the_user(local: Site, answer: str) -> None:
    sign_up(local.http, "alice")
    with terminal(local.data_dir, "users", "delete", "alice", env=local.env) as screen:
        screen.expect("? [y/N]")
        screen.type(answer)
        assert screen.finish() == 0
    assert "Deleted alice" in screen.screen
    assert local.login("alice").status_code == 401


def test_the_last_administrator_is_never_deleted_nor_asked_about(site: Site) -> None:
    _admin(site)
    refused = site.cli("users", "delete", "root", "--yes")
    assert (refused.returncode, refused.stderr) == (
        1,
        "Error: This is the last administrator; make another one first\n",
    )
    with terminal(site.data_dir, "users", "delete", "root", env=site.env) as screen:
        assert screen.finish() == 1
    assert screen.screen.strip() == "Error: This is the last administrator; make another one first"
    assert site.login("root").status_code == 200
    _admin(site, "ops")
    assert site.cli("users", "disable", "ops").returncode == 0
    assert site.cli("users", "delete", "root", "--yes").returncode == 1  # ops is disabled
    assert site.cli("users", "delete", "ops", "--yes").returncode == 0  # a disabled one may go


def test_deleting_the_first_administrator_warns_that_it_comes_back(local: Site) -> None:
    _admin(local)
    _admin(local, "ops")
    env = {"NIMBUS_FIRST_ADMIN_USERNAME": "root", "NIMBUS_FIRST_ADMIN_PASSWORD": NEW_PASSWORD}
    deleted = run_cli(local.data_dir, "users", "delete", "root", "--yes", env=local.env | env)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stderr == (
        "NIMBUS_FIRST_ADMIN_USERNAME names root: the next start makes it again\n"
    )
    assert NEW_PASSWORD not in deleted.stdout + deleted.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["set-password", "nobody", "--password-stdin"],
        ["disable", "nobody"],
        ["enable", "nobody"],
        ["delete", "nobody"],
        ["delete", "nobody", "--yes"],
    ],
)
def test_an_unknown_user_is_one_line_before_anything_is_read(local: Site, args: list[str]) -> None:
    result = local.cli("users", *args, stdin=NEW_PASSWORD)
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "Error: No user named 'nobody'\n",
    )


def test_an_unknown_user_is_refused_before_the_password_prompt(local: Site) -> None:
    with terminal(local.data_dir, "users", "set-password", "nobody", env=local.env) as screen:
        assert screen.finish() == 1
    assert screen.screen.strip() == "Error: No user named 'nobody'"
