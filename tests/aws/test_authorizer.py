"""The Lambda authorizer: Allow for a good nimbus or OIDC token, Deny for anything else, in the
shapes REST APIs (IAM policy) and HTTP APIs (simple response) expect; and the API trusting
the claims it passes on, while still checking the session."""

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from nimbus.bootstrap import LINK_PURPOSE, access_tokens, build, signing_key
from nimbus.domain.users import Role, User
from nimbus.entrypoints.aws_authorizer import make_authorizer, stage_resource
from nimbus.entrypoints.aws_events import CLAIMS_CONTEXT_KEY
from nimbus.entrypoints.aws_lambda import make_handler
from nimbus.security.links import LinkKind, LinkTokens
from nimbus.security.macs import Mac
from nimbus.settings import Settings
from tests.api.test_oidc import AUDIENCE, IdentityProvider
from tests.aws.events import (
    Event,
    LambdaTransport,
    http_authorizer_event,
    request_authorizer_event,
    rest_event,
    token_authorizer_event,
)
from tests.backends import database_url
from tests.factories import a_user
from tests.support import PASSWORD, make_settings

METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:example/prod/POST/{proxy+}"
STAGE_ARN = "arn:aws:execute-api:us-east-1:123456789012:example/prod/*"


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def settings(tmp_path: Path, idp: IdentityProvider) -> Settings:
    return make_settings(
        tmp_path / "data",
        secret_key="k" * 48,
        oidc_issuer=idp.issuer,
        oidc_audience=AUDIENCE,
        oidc_jwks_url=f"{idp.issuer}/.well-known/jwks.json",
        oidc_groups_claim="cognito:groups",
    )


def our_token(settings: Settings, now: datetime | None = None, **changes: Any) -> str:
    user: User = a_user(role=Role.ADMIN, **changes)
    issued = access_tokens(settings).issue(
        user, frozenset({"todos", "admin"}), now or datetime.now(UTC), session_id="s-1"
    )
    return issued.token


def test_a_good_token_is_allowed_on_the_whole_stage(settings: Settings) -> None:
    authorize = make_authorizer(settings)
    token = our_token(settings, username="ada")
    for header in (f"Bearer {token}", token):  # seed 000 sends the bare token
        answer = authorize(token_authorizer_event(header), None)
        statement = answer["policyDocument"]["Statement"]
        assert statement == [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": STAGE_ARN}
        ]
        claims = json.loads(answer["context"][CLAIMS_CONTEXT_KEY])
        assert answer["principalId"] == claims["sub"]
        assert claims["username"] == "ada"
        assert claims["scope"] == "admin todos"
        assert all(isinstance(v, str | int | bool) for v in answer["context"].values())


def test_request_and_http_api_authorizers_read_the_authorization_header(
    settings: Settings,
) -> None:
    authorize = make_authorizer(settings)
    header = {"authorization": f"Bearer {our_token(settings)}"}
    rest = authorize(request_authorizer_event({"Authorization": header["authorization"]}), None)
    assert rest["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert rest["policyDocument"]["Statement"][0]["Resource"] == (
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*"
    )
    simple = authorize(http_authorizer_event(header), None)
    assert simple["isAuthorized"] is True
    assert json.loads(simple["context"][CLAIMS_CONTEXT_KEY])["iss"] == "nimbus"
    assert set(simple) == {"isAuthorized", "context"}


def _tampered(token: str) -> str:
    head, body, signature = token.split(".")
    claims = json.loads(jwt.utils.base64url_decode(body))
    claims["role"] = "admin"
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{head}.{forged}.{signature}"


def bad_tokens(settings: Settings, idp: IdentityProvider) -> dict[str, str | None]:
    now = int(time.time())
    good = our_token(settings)
    claims = jwt.decode(good, options={"verify_signature": False})
    return {
        "missing": None,
        "empty": "Bearer ",
        "garbage": "Bearer not-a-token",
        "other scheme": f"Basic {good}",
        "expired": our_token(settings, now=datetime.now(UTC) - timedelta(hours=2)),
        "tampered": _tampered(good),
        "wrong key": jwt.encode(claims, "x" * 48, algorithm="HS256"),
        "alg none": jwt.encode(claims, "", algorithm="none"),
        "wrong audience": jwt.encode(claims | {"aud": "other"}, "k" * 48, algorithm="HS256"),
        "provider, expired": idp.token(iat=now - 7200, exp=now - 3600),
        "provider, wrong audience": idp.token(aud="someone-else"),
        "provider, unknown kid": idp.token(kid="nope"),
        **_other_kinds(settings),
    }


def _other_kinds(settings: Settings) -> dict[str, str | None]:
    """Tokens nimbus issues that are no access tokens: a login's MFA step, a reset link's."""
    links = LinkTokens(
        Mac(signing_key(settings), purpose=LINK_PURPOSE),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    user, now = a_user(), datetime.now(UTC)
    tokens: dict[str, str | None] = {}
    for kind in (LinkKind.MFA_STEP, LinkKind.PASSWORD_RESET):
        token, _ = links.issue(kind, subject=user.id, state="x", ttl=timedelta(minutes=5), now=now)
        tokens[kind.name.lower().replace("_", " ")] = f"Bearer {token}"
    return tokens


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "garbage",
        "other scheme",
        "expired",
        "tampered",
        "wrong key",
        "alg none",
        "wrong audience",
        "provider, expired",
        "provider, wrong audience",
        "provider, unknown kid",
        "mfa step",
        "password reset",
    ],
)
def test_anything_but_a_good_token_is_denied_cleanly(
    settings: Settings, idp: IdentityProvider, case: str
) -> None:
    authorize = make_authorizer(settings)
    token = bad_tokens(settings, idp)[case]
    answer = authorize(token_authorizer_event(token), None)
    assert answer["principalId"] == "anonymous"
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert answer["policyDocument"]["Statement"][0]["Resource"] == STAGE_ARN
    assert answer["context"]["code"] == "unauthorized"
    assert CLAIMS_CONTEXT_KEY not in answer["context"]
    headers = {"authorization": token} if token is not None else {}
    simple = authorize(http_authorizer_event(headers), None)
    assert simple["isAuthorized"] is False
    assert CLAIMS_CONTEXT_KEY not in simple["context"]


def test_a_provider_token_is_allowed(settings: Settings, idp: IdentityProvider) -> None:
    authorize = make_authorizer(settings)
    answer = authorize(token_authorizer_event(f"Bearer {idp.token()}"), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert answer["principalId"] == "idp-user-1"
    assert json.loads(answer["context"][CLAIMS_CONTEXT_KEY])["cognito:groups"] == ["USERS"]


def test_warm_up_pings_and_odd_arns(settings: Settings) -> None:
    authorize = make_authorizer(settings)
    assert authorize({"warmer": True}, None) == {"warm": True}
    assert stage_resource("arn:aws:execute-api:eu-west-1:1:abc/dev/GET/a/b") == (
        "arn:aws:execute-api:eu-west-1:1:abc/dev/*"
    )
    assert stage_resource("not-an-arn") == "not-an-arn"


# The API behind the authorizer.


@pytest.fixture
def dynamodb_settings(tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    with database_url("dynamodb", tmp_path) as url:
        stored = settings.model_copy(update={"database_url": url})
        build(stored).close()
        yield stored


def gateway(settings: Settings, payload: str) -> httpx.Client:
    """The API function behind the authorizer function, as API Gateway chains them."""
    authorize = make_authorizer(settings)

    def authorizer_context(event: Event) -> dict[str, Any] | None:
        headers = {k: v for k, v in event["headers"].items() if k.lower() == "authorization"}
        if payload == "1.0":
            answer = authorize(request_authorizer_event(headers), None)
            allowed = answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
            return {"principalId": answer["principalId"], **answer["context"]} if allowed else None
        simple = authorize(http_authorizer_event(headers), None)
        return {"lambda": simple["context"]} if simple["isAuthorized"] else None

    transport = LambdaTransport(
        make_handler(settings), payload=payload, authorizer=authorizer_context
    )
    return httpx.Client(transport=transport, base_url="https://api.example.com")


@pytest.mark.parametrize("payload", ["1.0", "2.0"])
def test_the_api_behind_the_authorizer(dynamodb_settings: Settings, payload: str) -> None:
    with gateway(dynamodb_settings, payload) as client:
        assert client.post("/users", json={"username": "ada", "password": PASSWORD}).is_success
        login = client.post("/login", json={"username": "ada", "password": PASSWORD}).json()
        auth = {"Authorization": f"Bearer {login['access_token']}"}
        created = client.post("/todos", json={"description": "ship it"}, headers=auth)
        assert created.status_code == 201
        assert client.get("/users/me", headers=auth).json()["user"]["username"] == "ada"
        assert client.get("/users", headers=auth).status_code == 403  # RBAC is the API's
        assert client.get("/todos", headers={"Authorization": "Bearer x"}).status_code == 401
        # Logout holds even though the authorizer, which keeps no state, still allows it.
        assert client.post("/auth/logout", headers=auth).status_code == 204
        assert client.get("/todos", headers=auth).status_code == 401


def test_the_api_trusts_the_authorizer_context_and_nothing_else(
    dynamodb_settings: Settings,
) -> None:
    handle = make_handler(dynamodb_settings)
    container = build(dynamodb_settings)
    container.users.create(username="ada", password=PASSWORD)
    pair = container.auth.login(name="ada", password=PASSWORD, client="198.51.100.1")
    claims = json.dumps(pair.access.claims)
    junk = [("Authorization", "Bearer junk")]
    # With verified claims in the context, the signature is not checked again...
    trusted = rest_event("GET", "/users/me", headers=junk, authorizer={CLAIMS_CONTEXT_KEY: claims})
    assert handle(trusted, None)["statusCode"] == 200
    # ... but the claims must be well formed, and the session live.
    broken = json.dumps(pair.access.claims | {"role": "overlord"})
    malformed = rest_event(
        "GET", "/users/me", headers=junk, authorizer={CLAIMS_CONTEXT_KEY: broken}
    )
    assert handle(malformed, None)["statusCode"] == 401
    # Another authorizer's context (say Cognito's claims object) is not taken for ours.
    cognito = rest_event("GET", "/users/me", headers=junk, authorizer={"claims": {"sub": "x"}})
    assert handle(cognito, None)["statusCode"] == 401
    not_json = rest_event(
        "GET", "/users/me", headers=junk, authorizer={CLAIMS_CONTEXT_KEY: "{oops"}
    )
    assert handle(not_json, None)["statusCode"] == 401
    container.auth.logout(container.auth.authenticate(pair.access.token))
    assert handle(trusted, None)["statusCode"] == 401


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_an_asymmetric_token_is_verified_by_the_same_keys(
    settings: Settings, algorithm: str
) -> None:
    asymmetric = settings.model_copy(update={"token_algorithm": algorithm})
    authorize = make_authorizer(asymmetric)
    token = our_token(asymmetric, username="ada")
    assert jwt.get_unverified_header(token)["alg"] == algorithm
    answer = authorize(token_authorizer_event(f"Bearer {token}"), None)
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert json.loads(answer["context"][CLAIMS_CONTEXT_KEY])["username"] == "ada"
    # Only the configured algorithm: the same key's HS256 token is denied, and so is this one
    # where HS256 is configured.
    for other, authorizer in ((our_token(settings), authorize), (token, make_authorizer(settings))):
        denied = authorizer(token_authorizer_event(f"Bearer {other}"), None)
        assert denied["policyDocument"]["Statement"][0]["Effect"] == "Deny"
