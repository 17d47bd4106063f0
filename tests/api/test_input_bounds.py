"""Input from outside that no store or parser can take is a 4xx, on every backend: numbers too
large in cursors, If-Match, token times and Content-Length, and oversized headers."""

import base64
import json
import socket

import httpx
import jwt
import pytest

from nimbus.bootstrap import signing_key
from nimbus.container import Container
from tests.factories import an_account
from tests.support import log_in


def _cursor(position: object) -> str:
    raw = json.dumps(position).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


HUGE = 99999999999999999999999999


@pytest.mark.store_independent
@pytest.mark.parametrize("path", ["/todos", "/messages", "/index", "/users"])
@pytest.mark.parametrize(
    "position",
    [{"id": HUGE}, {"uid": HUGE}, {"id": -HUGE}, {"id": True}, {"id": "x" * 65}, {"uid": 1.5}],
)
def test_a_cursor_holding_anything_but_an_id_is_a_bad_request(
    client: httpx.Client, container: Container, path: str, position: object
) -> None:
    headers = an_account(client, "alice").headers
    response = client.get(path, params={"cursor": _cursor(position)}, headers=headers)
    # /users answers 403 to a non-administrator before it reads a cursor.
    assert response.status_code in ((400, 403) if path == "/users" else (400,))
    if response.status_code == 400:
        assert response.json()["code"] == "invalid_input"


@pytest.mark.store_independent
@pytest.mark.parametrize("digits", [23, 5000])
def test_an_if_match_too_long_to_be_a_version_fails_the_precondition(
    client: httpx.Client, digits: int
) -> None:
    headers = an_account(client, "alice").headers
    todo = client.post("/todos", json={"description": "d"}, headers=headers).json()
    for method in ("PATCH", "DELETE"):
        response = client.request(
            method,
            f"/todos/{todo['uid']}",
            json={"state": "started"} if method == "PATCH" else None,
            headers=headers | {"If-Match": '"' + "9" * digits + '"'},
        )
        assert response.status_code == 412
    assert client.get(f"/todos/{todo['uid']}", headers=headers).json()["state"] == "unstarted"


@pytest.mark.store_independent
@pytest.mark.parametrize("exp", [10**20, -1, 0, True, "soon", 2.5e18])
def test_a_signed_token_with_an_impossible_expiry_is_refused(
    client: httpx.Client, container: Container, exp: object
) -> None:
    an_account(client, "alice")
    claims = jwt.decode(log_in(client, "alice"), options={"verify_signature": False})
    forged = jwt.encode(claims | {"exp": exp}, signing_key(container.settings), algorithm="HS256")
    response = client.get("/users/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


@pytest.mark.store_independent
@pytest.mark.parametrize("size", [9 * 1024, 1024 * 1024])
def test_an_oversized_header_is_431(client: httpx.Client, size: int) -> None:
    response = client.get("/todos", headers={"Authorization": "Bearer " + "a" * size})
    assert response.status_code == 431
    assert response.json()["code"] == "headers_too_large"


@pytest.mark.store_independent
def test_many_headers_together_over_the_bound_are_431(client: httpx.Client) -> None:
    headers = {f"X-Filler-{n}": "b" * 4000 for n in range(10)}
    response = client.get("/health", headers=headers)
    assert response.status_code == 431


@pytest.mark.store_independent
def test_a_content_length_too_long_to_be_a_size_is_not_a_server_error(
    client: httpx.Client,
) -> None:
    # httpx will not send such a header, so the request goes over a plain socket.
    url = httpx.URL(str(client.base_url))
    with socket.create_connection((url.host, url.port), timeout=10) as sock:
        sock.sendall(
            b"POST /todos HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}"
        )
        status_line = sock.makefile("rb").readline()
    status = int(status_line.split()[1])
    assert 400 <= status < 500, status_line
