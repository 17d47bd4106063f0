"""Asymmetric access tokens over real HTTP: `nimbus serve` with NIMBUS_TOKEN_ALGORITHM ES256 or
EdDSA publishes its public keys and an OpenID discovery document, which PyJWT's PyJWKClient
verifies its tokens with, without the secret; a rotated key is published before it signs, and a
retired one leaves; one nimbus accepts another as its OIDC provider. Under HS256 both documents
are 404."""

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

import httpx
import jwt
import pytest

from nimbus.bootstrap import build
from nimbus.security.key_ring import KeyRing, key_id
from nimbus.security.keys import load_or_create_key
from tests.support import PASSWORD, Served, free_port, make_settings, nimbus_serve, run_cli

ALGORITHMS = ["ES256", "EdDSA"]
AUDIENCE = "shop"
JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"


class TokenEnv(TypedDict):
    NIMBUS_TOKEN_ALGORITHM: str
    NIMBUS_TOKEN_ISSUER: str
    NIMBUS_TOKEN_AUDIENCE: str
    NIMBUS_PUBLIC_URL: str
    NIMBUS_SIGNING_KEY_RELOAD: str


def _env(algorithm: str, url: str, reload: int = 1) -> TokenEnv:
    """A nimbus that signs with `algorithm`, its issuer its own URL."""
    return {
        "NIMBUS_TOKEN_ALGORITHM": algorithm,
        "NIMBUS_TOKEN_ISSUER": url,
        "NIMBUS_TOKEN_AUDIENCE": AUDIENCE,
        "NIMBUS_PUBLIC_URL": url,
        "NIMBUS_SIGNING_KEY_RELOAD": str(reload),
    }


@pytest.fixture
def serving(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Served]:
    """`nimbus serve` under the test's algorithm, its issuer its own URL."""
    algorithm: str = request.param
    port = free_port()
    env = _env(algorithm, f"http://127.0.0.1:{port}")
    with nimbus_serve(tmp_path / "data", port=port, **env) as served:
        yield served


def log_in(url: str, username: str = "alice") -> str:
    with httpx.Client(base_url=url, timeout=30) as client:
        if client.post("/login", json={"username": username, "password": PASSWORD}).is_error:
            signed_up = client.post("/users", json={"username": username, "password": PASSWORD})
            assert signed_up.status_code == 201, signed_up.text
        response = client.post("/login", json={"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


def verified(url: str, token: str, algorithm: str) -> dict[str, Any]:
    """The token's claims, verified as another service would: the JWKS alone, no secret."""
    key = jwt.PyJWKClient(url + JWKS).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[algorithm], audience=AUDIENCE, issuer=url
    )
    return claims


def published_kids(url: str) -> list[str]:
    response = httpx.get(url + JWKS)
    assert response.status_code == 200, response.text
    return [key["kid"] for key in response.json()["keys"]]


@pytest.mark.parametrize("serving", ALGORITHMS, indirect=True)
def test_another_service_verifies_the_tokens_with_the_published_keys(serving: Served) -> None:
    url = serving.url
    algorithm = httpx.get(url + DISCOVERY).json()["id_token_signing_alg_values_supported"][0]
    token = log_in(url)
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == (algorithm, "at+jwt")
    claims = verified(url, token, algorithm)
    assert (claims["username"], claims["groups"]) == ("alice", ["users"])

    keys = httpx.get(url + JWKS)
    assert keys.headers["cache-control"] == "public, max-age=1"
    assert keys.headers["content-type"] == "application/json"
    [jwk] = keys.json()["keys"]
    assert jwk["kid"] == header["kid"]
    assert (jwk["alg"], jwk["use"]) == (algorithm, "sig")
    assert "d" not in jwk
    assert jwk["kid"] == key_id(load_or_create_key(serving.data_dir), algorithm)

    discovery = httpx.get(url + DISCOVERY)
    assert discovery.headers["cache-control"] == "public, max-age=1"
    assert discovery.json() == {
        "issuer": url,
        "jwks_uri": url + JWKS,
        "token_endpoint": url + "/auth/token",
        "grant_types_supported": ["password", "refresh_token"],
        "response_types_supported": ["token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [algorithm],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["admin", "messages", "profile", "todos"],
    }
    # A token signed otherwise is no token of this issuer's, for the verifier too.
    forged = jwt.encode(claims, "x" * 48, algorithm="HS256", headers={"kid": header["kid"]})
    with pytest.raises(jwt.PyJWTError):
        verified(url, forged, algorithm)


# Long enough that a key rotated as the server starts is still next when the test has read
# the JWKS and logged in: it signs RELOAD (and 2) seconds after it is made.
ROTATION_RELOAD = 15


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_rotated_key_is_in_the_jwks_before_it_signs(tmp_path: Path, algorithm: str) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _env(algorithm, url, reload=ROTATION_RELOAD)
    with nimbus_serve(tmp_path / "data", port=port, **env) as served:
        # Rotated before the server first reads its keys, which it does at the first request.
        cli = {
            "NIMBUS_TOKEN_ALGORITHM": algorithm,
            "NIMBUS_SIGNING_KEY_RELOAD": str(ROTATION_RELOAD),
        }
        rotated = run_cli(served.data_dir, "keys", "rotate", env=cli)
        assert rotated.returncode == 0, rotated.stderr
        kid = rotated.stdout.split()[3]
        root_kid = key_id(load_or_create_key(served.data_dir), algorithm)

        # Published while still next: a token signed now names the root key's.
        assert published_kids(url) == [root_kid, kid]
        token = log_in(url)
        assert jwt.get_unverified_header(token)["kid"] == root_kid

        # Once it signs, a fresh client finds its key in the JWKS, and the old key's tokens
        # still verify.
        deadline = time.monotonic() + 60
        while jwt.get_unverified_header(newer := log_in(url))["kid"] != kid:
            assert time.monotonic() < deadline, "the new key never signed"
            time.sleep(0.2)
        assert published_kids(url) == [root_kid, kid]
        assert verified(url, newer, algorithm)["username"] == "alice"
        assert verified(url, token, algorithm)["username"] == "alice"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_retired_key_leaves_the_jwks(tmp_path: Path, algorithm: str) -> None:
    data_dir = tmp_path / "data"
    container = build(make_settings(data_dir))
    root = load_or_create_key(data_dir)
    ring = KeyRing(root, lifetime=timedelta(minutes=16), algorithm=algorithm)
    # Rotated long ago, as `nimbus keys rotate` stores a key: key 0 has retired.
    stored = ring.new_key(datetime.now().astimezone() - timedelta(hours=1))
    try:
        container.storage.signing_keys.add(stored)
    finally:
        container.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with nimbus_serve(data_dir, port=port, **_env(algorithm, url)) as served:
        assert published_kids(served.url) == [ring.kid_for(stored)]
        assert key_id(root, algorithm) not in published_kids(served.url)
        token = log_in(served.url)
        assert verified(served.url, token, algorithm)["username"] == "alice"


def test_under_hs256_neither_document_exists(tmp_path: Path) -> None:
    with nimbus_serve(tmp_path / "data") as served:
        for path in (JWKS, DISCOVERY):
            response = httpx.get(served.url + path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "not_found"
            assert "HS256" in response.json()["message"]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_one_nimbus_accepts_another_as_its_oidc_provider(tmp_path: Path, algorithm: str) -> None:
    provider_port = free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    with (
        nimbus_serve(
            tmp_path / "provider", port=provider_port, **_env(algorithm, provider_url)
        ) as provider,
        # No NIMBUS_OIDC_JWKS_URL: the relying nimbus finds the keys by discovery.
        nimbus_serve(
            tmp_path / "relying",
            NIMBUS_OIDC_ISSUER=provider_url,
            NIMBUS_OIDC_AUDIENCE=AUDIENCE,
        ) as relying,
    ):
        token = log_in(provider.url, "carol")
        with httpx.Client(base_url=relying.url, timeout=30) as client:
            me = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["user"]["username"] == "carol"
            assert me.json()["claims"]["iss"] == provider_url
            events = client.get("/users/me/events", headers={"Authorization": f"Bearer {token}"})
            assert [event["kind"] for event in events.json()] == ["oidc.enrolled"]
            # A token the provider never signed is refused.
            claims = jwt.decode(token, options={"verify_signature": False})
            forged = jwt.encode(claims, "x" * 48, algorithm="HS256")
            refused = client.get("/users/me", headers={"Authorization": f"Bearer {forged}"})
            assert refused.status_code == 401
