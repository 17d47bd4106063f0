"""events/: one sample event per API route of the template, current, and answered as
expected by the Lambda handler once its placeholders hold real values."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nimbus.api.routes import web
from nimbus.bootstrap import build
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.settings import Settings
from tests.aws.events import EVENTS
from tests.aws.sample_events import api_events, expected_files, render
from tests.backends import database_url
from tests.support import make_settings

# In the order a user would send them, with the status each must get.
ORDER = [
    ("health.json", 200), ("ready.json", 200), ("open-api.json", 200), ("docs.json", 200),
    ("docs-redirect.json", 200), ("redoc.json", 200), ("docs-assets.json", 200),
    ("jwks.json", 404), ("open-id-configuration.json", 404),
    ("web-app.json", 200), ("web-assets.json", 200), ("other.json", 404),
    ("sign-up.json", 201), ("login.json", 200), ("token.json", 200),
    ("refresh.json", 200), ("who-am-i.json", 200), ("my-events.json", 200), ("add-todo.json", 201),
    ("list-todos.json", 200), ("get-todo.json", 200), ("replace-todo.json", 200),
    ("change-todo.json", 200), ("delete-todo.json", 204), ("get-user.json", 200),
    ("replace-user.json", 200), ("change-user.json", 200), ("list-messages.json", 200),
    ("post-message.json", 201), ("inventory.json", 200), ("list-products.json", 200),
    ("get-product.json", 200), ("add-product.json", 403), ("replace-product.json", 403),
    ("change-product.json", 403), ("delete-product.json", 403), ("list-users.json", 403),
    ("endpoints.json", 403), ("audit.json", 403), ("forgot-password.json", 202),
    ("send-verification.json", 202), ("verify-email.json", 400), ("reset-password.json", 400),
    ("my-sessions.json", 200), ("end-session.json", 404), ("end-other-sessions.json", 204),
    ("my-factors.json", 200), ("confirm-totp.json", 409), ("start-totp.json", 201),
    ("stop-totp.json", 404), ("second-step.json", 401),
    ("my-passkeys.json", 200), ("passkey-options.json", 200),
    ("verify-passkey-options.json", 404), ("add-passkey.json", 400),
    ("remove-passkey.json", 404), ("passkey-login-options.json", 200),
    ("passkey-login.json", 401), ("second-step-passkey-options.json", 401),
    ("logout.json", 204), ("delete-user.json", 401),
]  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with database_url("dynamodb", tmp_path) as url:
        settings = make_settings(tmp_path / "data", database_url=url)
        build(settings).close()
        yield settings


def test_there_is_a_current_sample_event_for_every_route() -> None:
    expected = {name: render(event) for name, event in expected_files(api_events()).items()}
    on_disk = {path.name: path.read_text() for path in EVENTS.glob("*.json")}
    assert on_disk == expected, "regenerate: .venv/bin/python -m tests.aws.sample_events"
    assert sorted(expected) == sorted(name for name, _ in ORDER)


def test_the_sample_events_are_answered(settings: Settings) -> None:
    container = build(settings)
    product = container.products.create("Oak Desk Lamp", "Warm light", 2499, 3)
    container.close()
    handle = make_handler(settings)
    values = {"PRODUCT_ID": product.id, "ASSET_VERSION": web.bundle().version}
    for name, status in ORDER:
        text = (EVENTS / name).read_text()
        for placeholder, value in values.items():
            text = text.replace(placeholder, value)
        answer = handle(json.loads(text), None)
        assert answer["statusCode"] == status, (name, answer.get("body"))
        body = json.loads(answer["body"]) if answer.get("body", "").startswith("{") else {}
        if name == "login.json":
            values |= {"ACCESS_TOKEN": body["access_token"], "REFRESH_TOKEN": body["refresh_token"]}
        elif name == "refresh.json":
            values["ACCESS_TOKEN"] = body["access_token"]
        elif name == "add-todo.json":
            values["TODO_UID"] = body["uid"]
        elif name == "who-am-i.json":
            values["USER_ID"] = body["user"]["id"]
