import base64
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from nimbus.settings import Settings
from tests.support import log_in, sign_up


@pytest.fixture
def token(client: httpx.Client) -> str:
    sign_up(client, "alice")
    return log_in(client, "alice")


@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "{}", "Bearer   {}"])
def test_a_valid_token_is_accepted_with_or_without_bearer(
    client: httpx.Client, token: str, template: str
) -> None:
    response = client.get("/todos", headers={"Authorization": template.format(token)})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Basic YWxpY2U6cGFzc3dvcmQ=", "Bearer not.a.jwt", "Token abc.def.ghi"],
)
def test_missing_or_malformed_credentials_are_401(client: httpx.Client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/todos", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized", "code": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_tampered_token_is_401(client: httpx.Client, token: str) -> None:
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload[:-2]}AA.{signature}"
    assert client.get("/todos", headers={"Authorization": forged}).status_code == 401


def test_an_expired_token_is_401(client: httpx.Client, token: str, settings: Settings) -> None:
    key = (settings.data_dir / "secret.key").read_text()
    claims = jwt.decode(token, options={"verify_signature": False})
    past = datetime.now(UTC) - timedelta(hours=2)
    claims.update(iat=past, nbf=past, exp=past + timedelta(minutes=15))
    expired = jwt.encode(claims, base64.urlsafe_b64decode(key), algorithm="HS256")
    assert client.get("/todos", headers={"Authorization": expired}).status_code == 401
