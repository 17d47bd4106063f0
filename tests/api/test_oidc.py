"""Tokens from an external OIDC provider, verified against a JWKS served on 127.0.0.1."""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support import PASSWORD, make_settings, serve, sign_up

AUDIENCE = "nimbus-app"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class IdentityProvider:
    """A JWKS endpoint and discovery document, as Cognito or Auth0 would serve them."""

    def __init__(self) -> None:
        self.requests = 0
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.requests += 1
                documents = {
                    "/.well-known/jwks.json": provider.jwks(),
                    "/.well-known/openid-configuration": {
                        "issuer": provider.issuer,
                        "jwks_uri": f"{provider.issuer}/.well-known/jwks.json",
                    },
                }
                document = documents.get(self.path)
                body = json.dumps(document).encode()
                self.send_response(200 if document else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY.public_key()))
        return {
            "keys": [
                rsa_jwk | {"kid": "rsa-1", "use": "sig", "alg": "RS256"},
                ec_jwk | {"kid": "ec-1", "use": "sig", "alg": "ES256"},
            ]
        }

    def token(
        self, key: Any = RSA_KEY, kid: str = "rsa-1", alg: str = "RS256", **claims: Any
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "idp-user-1",
            "iat": now,
            "exp": now + 600,
            "preferred_username": "carol",
            "cognito:groups": ["USERS"],
        } | claims
        return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.stop()


def _settings(tmp_path: Path, idp: IdentityProvider, **overrides: Any) -> Any:
    options = {
        "oidc_issuer": idp.issuer,
        "oidc_audience": AUDIENCE,
        "oidc_jwks_url": f"{idp.issuer}/.well-known/jwks.json",
        "oidc_groups_claim": "cognito:groups",
        "oidc_admin_group": "ADMINS",
    } | overrides
    return make_settings(tmp_path / "data", **options)


@pytest.fixture
def client(tmp_path: Path, idp: IdentityProvider) -> Iterator[httpx.Client]:
    yield from serve(_settings(tmp_path, idp))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_rs256_token_from_the_provider_is_accepted(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    response = client.get("/users/me", headers=_bearer(idp.token()))
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "carol"
    assert body["claims"]["sub"] == "idp-user-1"
    assert body["claims"]["cognito:groups"] == ["USERS"]


def test_an_es256_token_from_the_provider_is_accepted(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    token = idp.token(key=EC_KEY, kid="ec-1", alg="ES256")
    assert client.get("/users/me", headers=_bearer(token)).status_code == 200


def test_one_provider_user_is_one_nimbus_user_across_tokens(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    created = client.post("/todos", json={"description": "x"}, headers=_bearer(idp.token()))
    assert created.status_code == 201
    listed = client.get("/todos", headers=_bearer(idp.token(iat=int(time.time()) - 5)))
    assert [todo["uid"] for todo in listed.json()] == [created.json()["uid"]]
    other = client.get("/todos", headers=_bearer(idp.token(sub="idp-user-2")))
    assert other.json() == []


def test_an_enrolment_is_in_the_new_users_own_security_activity(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    token = idp.token()
    client.get("/users/me", headers=_bearer(token))  # the first sight enrols; the next does not
    events = client.get("/users/me/events", headers=_bearer(token)).json()
    assert [(e["kind"], e["client"], e["actor"] == e["subject"]) for e in events] == [
        ("oidc.enrolled", "127.0.0.1", True)
    ]
    assert events[0]["detail"] == {"username": "carol", "issuer": idp.issuer}


def test_a_username_taken_locally_gets_a_suffix(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    client.post("/users", json={"username": "carol", "password": "local password"})
    me = client.get("/users/me", headers=_bearer(idp.token())).json()
    assert me["user"]["username"].startswith("carol-")
    # The provider's user cannot log in with a password, and the local carol is untouched.
    assert (
        client.post(
            "/login", json={"username": me["user"]["username"], "password": "x" * 8}
        ).status_code
        == 401
    )
    assert client.post(
        "/login", json={"username": "carol", "password": "local password"}
    ).is_success


def test_the_admin_group_grants_admin_routes(client: httpx.Client, idp: IdentityProvider) -> None:
    user = idp.token()
    groups: dict[str, Any] = {"cognito:groups": ["USERS", "ADMINS"]}
    admin = idp.token(sub="idp-admin", **groups)
    assert client.get("/admin/endpoints", headers=_bearer(user)).status_code == 403
    assert client.get("/admin/endpoints", headers=_bearer(admin)).status_code == 200


def test_groups_as_api_gateways_string_form_are_understood(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    admin = idp.token(sub="idp-admin", **{"cognito:groups": "[USERS ADMINS]"})
    assert client.get("/admin/endpoints", headers=_bearer(admin)).status_code == 200


def test_logout_revokes_a_provider_token(client: httpx.Client, idp: IdentityProvider) -> None:
    token = idp.token()
    assert client.post("/auth/logout", headers=_bearer(token)).status_code == 204
    assert client.get("/users/me", headers=_bearer(token)).status_code == 401
    assert client.get("/users/me", headers=_bearer(idp.token(iat=int(time.time()) - 1))).is_success


def _forge_hs256(payload: dict[str, Any], secret: bytes, kid: str = "rsa-1") -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def _attacks(idp: IdentityProvider) -> dict[str, str]:
    now = int(time.time())
    claims = jwt.decode(idp.token(), options={"verify_signature": False})
    public_pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = jwt.encode(claims, "", algorithm="none", headers={"kid": "rsa-1"})
    return {
        "wrong audience": idp.token(aud="someone-else"),
        "wrong issuer": idp.token(iss="https://evil.example"),
        "expired": idp.token(iat=now - 7200, exp=now - 3600),
        "not yet valid": idp.token(nbf=now + 3600),
        "unknown kid": idp.token(kid="rsa-9"),
        "wrong key, known kid": idp.token(key=OTHER_RSA_KEY),
        "hs256 over the public key": _forge_hs256(claims, public_pem),
        "alg none": unsigned,
        "tampered": idp.token()[:-4] + "AAAA",
        "missing sub": jwt.encode(
            {k: v for k, v in claims.items() if k != "sub"}, RSA_KEY, "RS256", {"kid": "rsa-1"}
        ),
    }


@pytest.mark.parametrize(
    "attack",
    ["wrong audience", "wrong issuer", "expired", "not yet valid", "unknown kid",
     "wrong key, known kid", "hs256 over the public key", "alg none", "tampered", "missing sub"],
)  # fmt: skip
def test_bad_provider_tokens_are_401(
    client: httpx.Client, idp: IdentityProvider, attack: str
) -> None:
    response = client.get("/users/me", headers=_bearer(_attacks(idp)[attack]))
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized", "code": "unauthorized"}


def test_nimbus_tokens_still_work_beside_the_provider(client: httpx.Client) -> None:
    client.post("/users", json={"username": "dave", "password": "dave password"})
    token = client.post("/login", json={"username": "dave", "password": "dave password"}).json()
    assert client.get("/users/me", headers=_bearer(token["token"])).status_code == 200


def test_the_jwks_is_found_by_discovery_and_cached(tmp_path: Path, idp: IdentityProvider) -> None:
    settings = _settings(tmp_path, idp, oidc_jwks_url=None)
    for client in serve(settings):
        for _ in range(3):
            assert client.get("/users/me", headers=_bearer(idp.token())).status_code == 200
    assert idp.requests == 2  # the discovery document once, the JWKS once


def test_an_unreachable_provider_is_503_not_401(tmp_path: Path, idp: IdentityProvider) -> None:
    token = idp.token()
    settings = _settings(tmp_path, idp)
    idp.stop()
    for client in serve(settings):
        response = client.get("/users/me", headers=_bearer(token))
        assert response.status_code == 503
        assert response.json()["code"] == "unavailable"


def test_a_provider_user_never_takes_a_name_that_logs_in_to_another_account(
    client: httpx.Client, idp: IdentityProvider
) -> None:
    sign_up(client, "dora", email="dora@example.com")
    token = idp.token(preferred_username="dora@example.com")
    enrolled = client.get("/users/me", headers=_bearer(token)).json()["user"]
    assert enrolled["username"] != "dora@example.com"
    login = client.post("/login", json={"username": "dora@example.com", "password": PASSWORD})
    assert login.status_code == 200
