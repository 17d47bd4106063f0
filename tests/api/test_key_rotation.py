"""A signing-key rotation over real HTTP, on every backend: the server goes on verifying the
tokens it signed before, signs new ones with the new key once the key is published, and the
SigV4 credentials issued before still sign; a token naming no key we have is 401.

The rotation is made as `nimbus keys rotate` makes it: by another container on the same store,
which the server learns of by rereading the keys (every second here, NIMBUS_SIGNING_KEY_RELOAD).
"""

import time
from typing import Any

import httpx
import jwt
import pytest
from botocore.credentials import Credentials

from nimbus.bootstrap import build
from nimbus.container import Container
from nimbus.services.keys import Rotation
from nimbus.settings import Settings
from tests.api.test_products import signed_get
from tests.factories import Account
from tests.support import PASSWORD, sign_up

RELOAD = 1


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"signing_key_reload": RELOAD})


def kid(token: str) -> str:
    value: str = jwt.get_unverified_header(token)["kid"]
    return value


def log_in(client: httpx.Client, username: str = "alice") -> dict[str, Any]:
    response = client.post("/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rotate(settings: Settings) -> Rotation:
    """`nimbus keys rotate`: another process's container on the same store."""
    operator = build(settings)
    try:
        return operator.keys.rotate()
    finally:
        operator.close()


def first_token_of(client: httpx.Client, new_kid: str) -> dict[str, Any]:
    """Log in until the server signs with `new_kid`, which it does once the key is published."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tokens = log_in(client)
        if kid(tokens["access_token"]) == new_kid:
            return tokens
        time.sleep(0.2)
    raise AssertionError(f"the server never signed with {new_kid}")


def me(client: httpx.Client, token: str) -> httpx.Response:
    return client.get("/users/me", headers={"Authorization": f"Bearer {token}"})


def test_a_rotation_logs_no_one_out_and_keeps_the_sigv4_credentials(
    client: httpx.Client, container: Container, settings: Settings, admin: Account
) -> None:
    sign_up(client, "alice")
    before = log_in(client)
    root_kid = kid(before["access_token"])
    credential, secret = container.credentials.create("inventory-reader")
    service = Credentials(credential.access_key_id, secret)
    assert signed_get(client, service, "/products").status_code == 200

    rotation = rotate(settings)
    assert rotation.kid != root_kid
    after = first_token_of(client, rotation.kid)

    # The token signed before, and the one signed after, both pass; so does a refresh of the
    # pair from before, whose new token the new key signs.
    assert me(client, before["access_token"]).json()["user"]["username"] == "alice"
    assert me(client, after["access_token"]).json()["user"]["username"] == "alice"
    refreshed = client.post("/auth/refresh", json={"refresh_token": before["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert kid(refreshed.json()["access_token"]) == rotation.kid
    assert me(client, refreshed.json()["access_token"]).status_code == 200
    # The secret sealed under the root key before the rotation still opens: it still signs.
    assert signed_get(client, service, "/products").status_code == 200

    # The rotation is in the trail, naming the key by its kid alone.
    audit = client.get("/admin/audit", params={"kind": "key.rotated"}, headers=admin.headers)
    [event] = audit.json()
    assert (event["subject"], event["detail"]) == (rotation.kid, {"kid": rotation.kid})


def test_a_token_naming_no_key_we_have_is_401(client: httpx.Client, settings: Settings) -> None:
    sign_up(client, "alice")
    token = log_in(client)["access_token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    for forged in (
        jwt.encode(
            claims,
            "x" * 48,
            algorithm="HS256",
            headers={"typ": "at+jwt", "kid": "AAAAAAAAAAAAAAAA"},
        ),
        jwt.encode(
            claims, "x" * 48, algorithm="HS256", headers={"typ": "at+jwt", "kid": kid(token)}
        ),
        jwt.encode(claims, "", algorithm="none", headers={"typ": "at+jwt", "kid": kid(token)}),
    ):
        response = me(client, forged)
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthorized"
    assert me(client, token).status_code == 200
