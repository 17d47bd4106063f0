"""Size limits at the edge: a configured body limit (413 on every route, before parsing or
authentication) and bounded todo metadata (422 on create and on both kinds of update)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nimbus.bootstrap import build
from nimbus.domain.todos import METADATA_MAX_BYTES, METADATA_MAX_DEPTH
from tests.factories import Account, an_account
from tests.support import live_server, make_settings

LIMIT = 4096


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    """nimbus with NIMBUS_MAX_BODY_BYTES=4096, on SQLite: the limit is the app's, not a store's."""
    yield from _served(tmp_path, max_body_bytes=LIMIT)


def _served(tmp_path: Path, **settings: Any) -> Iterator[httpx.Client]:
    container = build(
        make_settings(tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'db'}", **settings)
    )
    try:
        with live_server(container) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http
    finally:
        container.close()


def _json_of_size(size: int, **fields: str) -> bytes:
    """A JSON object of exactly `size` bytes: `fields` plus a padding string."""
    head = "{" + "".join(f'"{key}": "{value}", ' for key, value in fields.items()) + '"pad": "'
    body = head + "x" * (size - len(head) - 2) + '"}'
    assert len(body) == size
    return body.encode()


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {
        "message": f"The request body is larger than {LIMIT} bytes",
        "code": "payload_too_large",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/users"),
        ("POST", "/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/todos"),
        ("PUT", "/todos/00000000-0000-7000-8000-000000000000"),
        ("PATCH", "/users/00000000-0000-7000-8000-000000000000"),
        ("POST", "/messages"),
        ("POST", "/products"),
        ("POST", "/no/such/route"),
    ],
)
def test_the_configured_limit_is_413_on_every_route_even_unauthenticated(
    client: httpx.Client, method: str, path: str
) -> None:
    body = _json_of_size(LIMIT + 1)
    response = client.request(
        method, path, content=body, headers={"Content-Type": "application/json"}
    )
    _assert_too_large(response)


def test_a_body_at_the_limit_is_accepted_and_one_byte_more_is_not(
    client: httpx.Client, alice: Account
) -> None:
    headers = {**alice.headers, "Content-Type": "application/json"}
    # "pad" is not a todo field, so an accepted body gets past the limit to validation (422).
    at_limit = client.post("/todos", content=_json_of_size(LIMIT, description="d"), headers=headers)
    assert at_limit.status_code == 422
    assert at_limit.json()["code"] == "validation_error"
    over = client.post("/todos", content=_json_of_size(LIMIT + 1, description="d"), headers=headers)
    _assert_too_large(over)


def test_a_form_body_over_the_limit_is_413(client: httpx.Client) -> None:
    form = {"grant_type": "password", "username": "a", "password": "x" * LIMIT}
    _assert_too_large(client.post("/auth/token", data=form))


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(
    client: httpx.Client, alice: Account
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"description": "big", "metadata": {"blob": "'
        for _ in range(LIMIT // 512 + 1):
            yield b"x" * 512
        yield b'"}}'

    response = client.post(
        "/todos", content=chunks(), headers={**alice.headers, "Content-Type": "application/json"}
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    _assert_too_large(response)
    assert client.get("/todos", headers=alice.headers).json() == []


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


def _wide(count: int) -> dict[str, Any]:
    # Many small keys: under the body limit of the default settings, over the metadata limit.
    return {f"k{i}": i for i in range(count)}


BAD_METADATA = {
    "one level too deep": _nested(METADATA_MAX_DEPTH + 1),
    "deep in lists": {"k": [[[[[[[[[[[1]]]]]]]]]]]},
    "huge": {"blob": "x" * METADATA_MAX_BYTES},
    "many keys": _wide(METADATA_MAX_BYTES // 8),
}


@pytest.fixture
def roomy(tmp_path: Path) -> Iterator[httpx.Client]:
    """The default body limit (1 MiB), so metadata reaches validation."""
    yield from _served(tmp_path)


@pytest.mark.parametrize("metadata", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_oversized_metadata_is_422_on_create_put_and_patch(
    roomy: httpx.Client, metadata: dict[str, Any]
) -> None:
    alice = an_account(roomy, "alice").headers
    created = roomy.post("/todos", json={"description": "d"}, headers=alice).json()
    responses = [
        roomy.post("/todos", json={"description": "d", "metadata": metadata}, headers=alice),
        roomy.put(f"/todos/{created['uid']}", json={"metadata": metadata}, headers=alice),
        roomy.patch(f"/todos/{created['uid']}", json={"metadata": metadata}, headers=alice),
    ]
    for response in responses:
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "validation_error"
        assert [error["field"] for error in body["errors"]] == ["body.metadata"]
    assert roomy.get("/todos", headers=alice).json() == [created]


def test_metadata_at_both_limits_is_kept(roomy: httpx.Client) -> None:
    alice = an_account(roomy, "alice").headers
    deepest = _nested(METADATA_MAX_DEPTH)
    largest = {"blob": "x" * (METADATA_MAX_BYTES - len('{"blob":""}'))}
    for metadata in (deepest, largest):
        response = roomy.post(
            "/todos", json={"description": "d", "metadata": metadata}, headers=alice
        )
        assert response.status_code == 201, response.text
        assert response.json()["metadata"] == metadata
