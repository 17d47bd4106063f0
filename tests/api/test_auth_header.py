import base64
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest

from nimbus.aws import AwsUnreachable
from nimbus.settings import Settings
from nimbus.ssm import create_ssm_key, delete_ssm_key, load_ssm_key
from tests.backends import dynamodb_endpoint
from tests.support import log_in, make_settings, serve, sign_up


@pytest.fixture
def token(client: httpx.Client) -> str:
    sign_up(client, "alice")
    return log_in(client, "alice")


@pytest.mark.store_independent
@pytest.mark.parametrize("template", ["Bearer {}", "bearer {}", "{}", "Bearer   {}"])
def test_a_valid_token_is_accepted_with_or_without_bearer(
    client: httpx.Client, token: str, template: str
) -> None:
    response = client.get("/todos", headers={"Authorization": template.format(token)})
    assert response.status_code == 200


@pytest.mark.store_independent
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


@pytest.mark.store_independent
def test_a_tampered_token_is_401(client: httpx.Client, token: str) -> None:
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload[:-2]}AA.{signature}"
    assert client.get("/todos", headers={"Authorization": forged}).status_code == 401


@pytest.mark.store_independent
def test_an_expired_token_is_401(client: httpx.Client, token: str, settings: Settings) -> None:
    key = (settings.data_dir / "secret.key").read_text()
    claims = jwt.decode(token, options={"verify_signature": False})
    past = datetime.now(UTC) - timedelta(hours=2)
    claims.update(iat=past, nbf=past, exp=past + timedelta(minutes=15))
    expired = jwt.encode(claims, base64.urlsafe_b64decode(key), algorithm="HS256")
    assert client.get("/todos", headers={"Authorization": expired}).status_code == 401


def _create_key(parameter: str) -> None:
    """Store a new key in moto's SSM, which the whole suite's load can make slow to answer: a
    try that timed out may have stored it, and the next then finds it there."""
    for attempt in range(3):
        try:
            create_ssm_key(parameter, "us-east-1")
            return
        except AwsUnreachable:
            if attempt == 2:
                raise


def test_a_key_kept_in_ssm_signs_and_verifies_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", dynamodb_endpoint())
    parameter = f"/nimbus-test/{uuid.uuid4().hex}/auth-key"
    _create_key(parameter)
    try:
        settings = make_settings(tmp_path / "data", secret_key=f"ssm:{parameter}")
        for client in serve(settings):
            sign_up(client, "alice")
            token = log_in(client, "alice")
            assert client.get("/todos", headers={"Authorization": token}).status_code == 200
        key = load_ssm_key(parameter, "us-east-1")
        assert (
            jwt.decode(token, key, algorithms=["HS256"], audience="nimbus")["username"] == "alice"
        )
        assert not (tmp_path / "data" / "secret.key").exists()
    finally:
        assert delete_ssm_key(parameter, "us-east-1")
