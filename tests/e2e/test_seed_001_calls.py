"""Seed 001's documented calls (the SAM user API), run with curl against `nimbus serve`.

Each command is the seed's text, with its base URL swapped for the test server's and, where
the seed's page shows "[email protected]" in place of an address, a real address put back.
The seed had no authentication: nimbus answers its calls under its own rules, so the calls
that change an account are made again with an Authorization header added.
"""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends import BACKENDS, database_url
from tests.e2e.seed_calls import curl
from tests.support import PASSWORD, nimbus_serve, run_cli

BASE = "https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod"

CREATE = """curl -X POST https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod/user \\
-H "Content-Type: application/json" \\
-d '{
"email": "denis@example.com",
"name": "Denis",
"password": "secret123"
}'"""

REPLACE = """curl -X PUT https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod/user/denis@example.com \\
-H "Content-Type: application/json" \\
-d '{
"name": "Denis Updated",
"password": "newsecret",
"last_login": null
}'"""  # noqa: E501 (the seed's page ends this one with }'' : an unclosed quote to a shell)

PATCH = """curl -X PATCH https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod/user/denis@example.com \\
-H "Content-Type: application/json" \\
-d '{
"name": "Denny"
}'"""  # noqa: E501

DELETE = "curl -X DELETE https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod/user/denis@example.com"

LIST = "curl https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod/users"

LOGIN = """curl -X POST https://<api-id>.execute-api.eu-west-1.amazonaws.com/Prod/login \\
-H "Content-Type: application/json" \\
-d '{
"email": "denis@example.com",
"password": "secret123"
}'"""


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """`nimbus serve` on each backend, with an administrator made on the command line."""
    with database_url(request.param, tmp_path) as database:
        data_dir = tmp_path / "data"
        # The seed's demo password, "secret123", is a common one: its calls run with the list off.
        with nimbus_serve(
            data_dir, NIMBUS_DATABASE_URL=database, NIMBUS_PASSWORD_BLOCKLIST="false"
        ) as served:
            made = run_cli(
                data_dir, "users", "create", "--username", "root", "--admin", "--password-stdin",
                stdin=PASSWORD + "\n", env={"NIMBUS_DATABASE_URL": database},
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            yield served.url
        for secret in ("secret123", "newsecret"):
            assert secret not in served.log


def run(command: str, url: str, *extra: str) -> tuple[int, object]:
    return curl(command, BASE, url, *extra)


def bearer(url: str, login: str = LOGIN) -> str:
    status, body = run(login, url)
    assert status == 200, body
    assert isinstance(body, dict)
    return f"Authorization: Bearer {body['access_token']}"


ADMIN_LOGIN = LOGIN.replace('"email": "denis@example.com"', '"username": "root"').replace(
    "secret123", PASSWORD
)
NEW_PASSWORD_LOGIN = LOGIN.replace("secret123", "newsecret")


def test_the_seed_001_calls_work_as_written(server: str) -> None:
    url = server
    status, user = run(CREATE, url)
    assert status == 201, user
    assert isinstance(user, dict)
    assert (user["email"], user["name"], user["role"]) == ("denis@example.com", "Denis", "user")
    assert user["username"] == "denis"  # made from the email; the email stays private
    assert user["last_login"] is None
    assert "password" not in str(user)
    assert "secret123" not in str(user)

    status, tokens = run(LOGIN, url)
    assert status == 200
    assert isinstance(tokens, dict)
    assert tokens["token_type"] == "bearer"

    # The seed's own calls carry no credentials: nimbus refuses them, as JSON.
    for command in (REPLACE, PATCH, DELETE, LIST):
        status, body = run(command, url)
        assert (status, body) == (401, {"message": "Unauthorized", "code": "unauthorized"})

    admin = bearer(url, ADMIN_LOGIN)

    status, users = run(LIST, url, "-H", admin)
    assert status == 200
    assert isinstance(users, list)
    assert sorted(u["username"] for u in users) == ["denis", "root"]

    status, replaced = run(REPLACE, url, "-H", admin)
    assert status == 200, replaced
    assert isinstance(replaced, dict)
    assert (replaced["name"], replaced["email"]) == ("Denis Updated", "denis@example.com")
    assert replaced["last_login"] is not None  # set by the login above, not by the PUT
    status, _ = run(LOGIN, url)
    assert status == 401  # the new password replaced "secret123"
    assert run(NEW_PASSWORD_LOGIN, url)[0] == 200

    status, patched = run(PATCH, url, "-H", admin)
    assert status == 200
    assert isinstance(patched, dict)
    assert patched["name"] == "Denny"

    status, body = run(DELETE, url, "-H", admin)
    assert (status, body) == (204, None)
    status, body = run(DELETE, url, "-H", admin)
    assert status == 404
    assert isinstance(body, dict)
    assert body["code"] == "not_found"


def test_the_owner_changes_their_own_account_by_email(server: str) -> None:
    url = server
    assert run(CREATE, url)[0] == 201
    own = bearer(url)

    # The email in the path, URL-encoded or not, in any case.
    for written in ("denis@example.com", "denis%40example.com", "Denis%40Example.COM"):
        status, patched = run(PATCH.replace("denis@example.com", written), url, "-H", own)
        assert status == 200, (written, patched)
        assert isinstance(patched, dict)
        assert patched["name"] == "Denny"

    # A new password needs the current one too: a stolen token alone is not enough.
    status, body = run(REPLACE, url, "-H", own)
    assert status == 403
    assert isinstance(body, dict)
    assert body["code"] == "current_password_required"
    with_current = REPLACE.replace("null", 'null,\n"current_password": "secret123"')
    status, body = run(with_current, url, "-H", own)
    assert status == 200, body
    assert run(PATCH, url, "-H", own)[0] == 401  # a new password ends every session
    own = bearer(url, NEW_PASSWORD_LOGIN)

    # Another account's email is refused before any look-up: it never tells who has one.
    for other in ("someone@example.com", "nobody@example.com"):
        status, body = run(PATCH.replace("denis@example.com", other), url, "-H", own)
        assert status == 403
    status, _ = run(LIST, url, "-H", own)
    assert status == 403  # listing users is for administrators

    # Deleting your own account needs your password too.
    status, body = run(DELETE, url, "-H", own)
    assert status == 403
    assert isinstance(body, dict)
    assert body["code"] == "current_password_required"
    password_body = (
        "-H",
        "Content-Type: application/json",
        "-d",
        '{"current_password": "newsecret"}',
    )
    status, body = run(DELETE, url, "-H", own, *password_body)
    assert (status, body) == (204, None)
    assert run(NEW_PASSWORD_LOGIN, url)[0] == 401


def test_seed_001_bodies_are_checked(server: str) -> None:
    url = server
    assert run(CREATE, url)[0] == 201
    own = bearer(url)
    assert run(CREATE, url)[0] == 409  # that email has an account
    status, namesake = run(CREATE.replace("example.com", "example.org"), url)
    assert status == 201
    assert isinstance(namesake, dict)
    assert re.fullmatch(r"denis-[0-9a-f]{6}", namesake["username"])

    cases = [
        (CREATE.replace('"Denis"', '"Denis", "role": "admin"'), []),  # no role at sign-up
        (CREATE.replace("denis@example.com", "not-an-email"), []),
        (CREATE.replace("secret123", "short"), []),
        (PATCH.replace('"Denny"', '"Denny", "last_login": "2020-01-01T00:00:00Z"'), ["-H", own]),
        (PATCH.replace('"name": "Denny"', '"last_login": null'), ["-H", own]),
        (PATCH.replace('"name": "Denny"', '"email": "new@example.com"'), ["-H", own]),
    ]
    for command, extra in cases:
        status, body = run(command, url, *extra)
        assert status == 422, (command, body)
        assert isinstance(body, dict)
        assert body["code"] == "validation_error"
    status, user = run(PATCH.replace('"Denny"', '"Denis"'), url, "-H", own)
    assert status == 200
    assert isinstance(user, dict)
    assert (user["name"], user["role"], user["email"]) == ("Denis", "user", "denis@example.com")
