"""The OpenAPI document is good enough for a client generator: openapi-python-client makes a
typed client from it, and that client drives the API, errors and headers included."""

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nimbus.api.app import create_app
from nimbus.bootstrap import build
from tests.support import PASSWORD, live_server, make_settings

GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    container = build(make_settings(tmp_path / "data"))
    try:
        with live_server(container) as url:
            yield url, create_app(container).openapi()
    finally:
        container.close()


def generate(document: dict[str, Any], where: Path) -> ModuleType:
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    config = where / "config.yaml"
    config.write_text("post_hooks: []\n")
    made = subprocess.run(
        [GENERATOR, "generate", "--path", str(spec), "--meta", "none", "--config", str(config),
         "--output-path", str(where / "nimbus_client")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "Warning" not in made.stdout, made.stdout  # every schema and operation understood
    sys.path.insert(0, str(where))
    try:
        return importlib.import_module("nimbus_client")
    finally:
        sys.path.remove(str(where))


@pytest.fixture
def forget_client() -> Iterator[None]:
    yield
    for name in [name for name in sys.modules if name.partition(".")[0] == "nimbus_client"]:
        del sys.modules[name]


@pytest.mark.usefixtures("forget_client")
def test_a_generated_client_drives_the_api(
    served: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, document = served
    package = generate(document, tmp_path)
    with package.Client(base_url=url, raise_on_unexpected_status=True) as anonymous:
        tokens = _sign_up_and_log_in(anonymous)
    with package.AuthenticatedClient(
        base_url=url, token=tokens.access_token, raise_on_unexpected_status=True
    ) as alice:
        _keep_todos(alice)


def _sign_up_and_log_in(anonymous: Any) -> Any:
    # Generated into tmp_path by the test, so no checker sees it beforehand.
    from nimbus_client.api.auth import login  # type: ignore[import-not-found]
    from nimbus_client.api.users import sign_up  # type: ignore[import-not-found]
    from nimbus_client.models import (  # type: ignore[import-not-found]
        ErrorBody,
        LoginRequest,
        TokenResponse,
        UserCreate,
        UserPublic,
    )

    user = sign_up.sync(client=anonymous, body=UserCreate(username="alice", password=PASSWORD))
    assert isinstance(user, UserPublic)
    assert user.username == "alice"
    taken = sign_up.sync(client=anonymous, body=UserCreate(username="alice", password=PASSWORD))
    assert isinstance(taken, ErrorBody)
    assert taken.code == "conflict"

    # A 422 parses as the ErrorBody it is, with each field's error.
    short = sign_up.sync(client=anonymous, body=UserCreate(username="bob", password="short"))
    assert isinstance(short, ErrorBody)
    assert short.code == "validation_error"
    assert [e.field for e in short.errors] == ["body.password"]

    tokens = login.sync(client=anonymous, body=LoginRequest(username="alice", password=PASSWORD))
    assert isinstance(tokens, TokenResponse)
    return tokens


def _keep_todos(alice: Any) -> None:
    from nimbus_client.api.todos import (  # type: ignore[import-not-found]
        create_todo,
        get_todo,
        list_todos,
        patch_todo,
    )
    from nimbus_client.models import (
        ErrorBody,
        TodoCreate,
        TodoPublic,
        TodoState,
        TodoUpdate,
    )

    for n in range(3):
        assert isinstance(
            create_todo.sync(client=alice, body=TodoCreate(description=f"t{n}")), TodoPublic
        )
    page = list_todos.sync_detailed(client=alice, limit=2)
    assert [t.description for t in page.parsed] == ["t2", "t1"]
    assert page.headers["link"].endswith('rel="next"')

    first = page.parsed[1]
    read = get_todo.sync_detailed(client=alice, uid=first.uid)
    assert read.headers["etag"] == f'"{first.version}"'
    changed = patch_todo.sync(
        client=alice, uid=first.uid, body=TodoUpdate(state=TodoState.STARTED),
        if_match=read.headers["etag"],
    )  # fmt: skip
    assert isinstance(changed, TodoPublic)
    assert changed.state is TodoState.STARTED
    stale = patch_todo.sync(
        client=alice, uid=first.uid, body=TodoUpdate(state=TodoState.COMPLETED),
        if_match=read.headers["etag"],
    )  # fmt: skip
    assert isinstance(stale, ErrorBody)
    assert stale.code == "precondition_failed"


def test_the_document_names_what_the_api_sends(served: tuple[str, dict[str, Any]]) -> None:
    _, document = served
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert "list_todos" in ids
    assert not any(op_id.endswith(("_get", "_post")) for op_id in ids)
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    for op in operations:
        for status, response in op["responses"].items():
            if status == "422":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}
            if status in ("429", "503"):
                assert "Retry-After" in response["headers"]
    bodies = [
        schemas[name]
        for name in ("UserCreate", "LoginRequest", "TodoCreate", "MessageCreate", "ProductCreate")
    ]
    assert all(body.get("examples") for body in bodies)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_schema_the_document_refers_to_is_in_it(served: tuple[str, dict[str, Any]]) -> None:
    _, document = served
    refs = set(_refs(document))
    assert "#/components/schemas/ErrorBody" in refs
    assert "#/components/schemas/FieldError" in refs
    schemas = document["components"]["schemas"]
    assert {ref.removeprefix("#/components/schemas/") for ref in refs} <= set(schemas)


def test_no_route_builds_a_validator_for_its_error_answers(tmp_path: Path) -> None:
    """The errors' schema is named (errors.ERROR_JSON), not a response `model`, for which
    FastAPI would build a validator on every route, for the document alone."""
    from fastapi.routing import APIRoute

    from nimbus.api.schemas.errors import ErrorBody

    container = build(make_settings(tmp_path / "data"))
    routes = [r for r in create_app(container).routes if isinstance(r, APIRoute)]
    container.close()
    models = {f.field_info.annotation for r in routes for f in r.response_fields.values()}
    assert ErrorBody not in models
    assert any(r.responses for r in routes)
