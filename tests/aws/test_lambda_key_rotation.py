"""A signing-key rotation on Lambda, on the DynamoDB backend: the API function signs with the
new key once it is published, and both the tokens signed before and after pass the authorizer
function and the API function behind it, in environments that were warm at the rotation and
in new ones; the authorizer's init reads nothing from the store."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from nimbus.bootstrap import build
from nimbus.domain.errors import Unavailable
from nimbus.entrypoints.aws_authorizer import make_authorizer
from nimbus.settings import Settings
from tests.aws.events import token_authorizer_event
from tests.aws.test_authorizer import gateway
from tests.backends import database_url
from tests.support import PASSWORD, make_settings


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    with database_url("dynamodb", tmp_path) as url:
        settings = make_settings(
            tmp_path / "data", secret_key="k" * 48, database_url=url, signing_key_reload=1
        )
        build(settings).close()  # the tables, as the template makes them
        yield settings


def kid(token: str) -> str:
    value: str = jwt.get_unverified_header(token)["kid"]
    return value


def log_in(client: httpx.Client) -> str:
    response = client.post("/login", json={"username": "ada", "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def allowed(settings: Settings, token: str, authorize: Any = None) -> bool:
    answer = (authorize or make_authorizer(settings))(
        token_authorizer_event(f"Bearer {token}"), None
    )
    effect: str = answer["policyDocument"]["Statement"][0]["Effect"]
    return effect == "Allow"


@pytest.mark.parametrize("payload", ["1.0", "2.0"])
def test_tokens_of_a_rotated_key_pass_the_authorizer_and_the_api(
    settings: Settings, payload: str
) -> None:
    with gateway(settings, payload) as client:
        assert client.post("/users", json={"username": "ada", "password": PASSWORD}).is_success
        before = log_in(client)
        warm = make_authorizer(settings)
        assert allowed(settings, before, warm)  # has read the keys: key 0 alone

        operator = build(settings)  # `nimbus keys rotate`, from the operator's machine
        rotation = operator.keys.rotate()
        operator.close()
        deadline = time.monotonic() + 60
        after = log_in(client)
        while kid(after) != rotation.kid and time.monotonic() < deadline:
            time.sleep(0.2)
            after = log_in(client)
        assert kid(after) == rotation.kid
        assert kid(before) != rotation.kid

        for token in (before, after):
            auth = {"Authorization": f"Bearer {token}"}
            assert client.get("/users/me", headers=auth).json()["user"]["username"] == "ada"
            assert allowed(settings, token, warm)  # warm at the rotation
            assert allowed(settings, token)  # a new environment
        forged = jwt.encode(
            jwt.decode(after, options={"verify_signature": False}),
            "x" * 48,
            algorithm="HS256",
            headers={"typ": "at+jwt", "kid": rotation.kid},
        )
        assert not allowed(settings, forged, warm)
        assert (
            client.get("/users/me", headers={"Authorization": f"Bearer {forged}"}).status_code
            == 401
        )


def test_the_authorizer_reads_the_keys_at_its_first_token_not_at_init(tmp_path: Path) -> None:
    unreachable = "dynamodb://?region=us-east-1&table_prefix=t-&endpoint_url=http://127.0.0.1:9"
    settings = make_settings(tmp_path / "data", secret_key="k" * 48, database_url=unreachable)
    authorize = make_authorizer(settings)  # no store reached: it would fail here
    assert authorize({"warmer": True}, None) == {"warm": True}
    # A token cannot be judged without the keys: an error (API Gateway's 500, not cached),
    # never a Deny that a retry would not undo.
    token = jwt.encode({"sub": "ada"}, "k" * 48, algorithm="HS256")
    with pytest.raises(Unavailable):
        authorize(token_authorizer_event(f"Bearer {token}"), None)
