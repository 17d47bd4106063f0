"""One pass over every route of the API, recorded so two deployments can be compared.

Values that differ from run to run (ids, times, tokens, cursors) are masked; everything else
(status, content type, the JSON body, ETag, Link, Retry-After) must match exactly.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nimbus.api.routes import web
from nimbus.security import totp
from tests.support import PASSWORD

MASKS = [
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+"), "<jwt>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[\w-]+"), "<rt>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?"), "<time>"),
    (re.compile(r"cursor=[^&>\s\"]+"), "cursor=<cursor>"),
    (re.compile(r'"(exp|iat|nbf)": \d+'), r'"\1": <epoch>'),
    # An audit event's request id is made per request, and its client is the peer's address.
    # A session's client and its address are the caller's, which differ by runtime.
    (re.compile(r'"(request_id|client|address|user_agent)": "[^"]*"'), r'"\1": <masked>'),
    # A TOTP enrolment's secret (and so its URI and QR code), and recovery codes, are random.
    (re.compile(r'"(secret|otpauth_uri|qr_svg)": "(?:[^"\\]|\\.)*"'), r'"\1": <masked>'),
    (re.compile(r'"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}"'), "<recovery-code>"),
    # A passkey ceremony's challenge is random; its RP ID is the deployment's host, and the
    # user handle the account's id.
    (re.compile(r'"(challenge|rpId)": "[^"]*"'), r'"\1": <masked>'),
    (re.compile(r'"rp": \{"id": "[^"]*"'), '"rp": {"id": <masked>'),
    (re.compile(r'("user": \{"displayName": "[^"]*", "id": )"[^"]*"'), r"\1<masked>"),
]


@dataclass(frozen=True)
class Exchange:
    method: str
    route: str
    status: int
    content_type: str
    body: str
    headers: tuple[tuple[str, str], ...]


def mask(text: str) -> str:
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


class Recorder:
    def __init__(self, client: httpx.Client, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.exchanges: list[Exchange] = []

    def __call__(
        self,
        method: str,
        route: str,
        path: str | None = None,
        *,
        signed: Credentials | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if signed is not None:
            kwargs["headers"] = self.sign(method, path or route, signed)
        response = self.client.request(method, path or route, **kwargs)
        content_type = response.headers.get("content-type", "")
        if content_type.startswith("application/json") and response.content:
            document = response.json()
            if route == "/openapi.json":
                document.pop("servers", None)  # names the stage prefix, when there is one
            body = mask(json.dumps(document, sort_keys=True))
        else:
            body = f"{len(response.content) > 0}"
        headers = tuple(
            (name, mask(response.headers[name].replace(f"<{self.prefix}/", "</")))
            for name in ("etag", "link", "retry-after", "www-authenticate", "allow")
            if name in response.headers
        )
        self.exchanges.append(
            Exchange(method, route, response.status_code, content_type, body, headers)
        )
        return response

    def sign(self, method: str, path: str, credentials: Credentials) -> dict[str, str]:
        """SigV4 headers for the URL the client sees: the stage prefix included."""
        request = AWSRequest(method=method, url=f"{self.client.base_url}{self.prefix}{path}")
        SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(request)
        return dict(request.headers)


def run(
    client: httpx.Client,
    make_admin: Callable[[str], None],
    prefix: str = "",
    make_credential: Callable[[str], Credentials] | None = None,
) -> list[Exchange]:
    """Every route once or more, in the order a user would meet them; `prefix` is the path
    in front of the routes (an API Gateway stage) that links carry."""
    call = Recorder(client, prefix)
    call("GET", "/health")
    call("GET", "/health/ready")
    call("GET", "/openapi.json")
    call("GET", "/docs")
    call("GET", "/docs/oauth2-redirect")
    call("GET", "/redoc")
    call("GET", "/static/docs", "/static/docs/swagger-ui.css")
    # 404 under HS256, the default: there is no public key (tests/api/test_jwks.py has ES256).
    call("GET", "/.well-known/jwks.json")
    call("GET", "/.well-known/openid-configuration")
    call("GET", "/")
    version = web.bundle().version
    call("GET", "/app/{version}/{name}", f"/app/{version}/app.js")
    call("GET", "/app/{version}/{name}", "/app/0000000000000000/app.js")
    call("GET", "/nowhere")
    call("DELETE", "/health")

    alice = {"username": "alice", "password": PASSWORD, "email": "alice@example.com"}
    call("POST", "/users", json=alice)
    call("POST", "/users", json=alice)
    call("POST", "/users", json={"username": "x"})
    call("POST", "/users", content=b"{not json", headers={"Content-Type": "application/json"})
    call("POST", "/login", json={"username": "alice", "password": "wrong password"})
    login = call("POST", "/login", json={"username": "alice", "password": PASSWORD}).json()
    call("POST", "/auth/token", data={"grant_type": "password", "username": "alice"})
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    call("POST", "/auth/token", data=form | {"scope": "todos profile"})
    refreshed = call("POST", "/auth/refresh", json={"refresh_token": login["refresh_token"]})
    call("POST", "/auth/refresh", json={"refresh_token": login["refresh_token"]})
    alice_token = call("POST", "/login", json={"email": alice["email"], "password": PASSWORD})
    auth = {"Authorization": f"Bearer {alice_token.json()['access_token']}"}
    assert refreshed.status_code == 200

    me = call("GET", "/users/me", headers=auth).json()
    call("GET", "/users/me")
    call("GET", "/users/me", headers={"Authorization": "Bearer not-a-token"})
    call("GET", "/users/me", headers={"Authorization": auth["Authorization"].split()[1]})
    call("GET", "/users/me/events", headers=auth, params={"limit": 3})
    call("GET", "/users/me/events")
    call("GET", "/users/me/sessions", headers=auth)
    call("GET", "/users/me/sessions")
    gone = "/users/me/sessions/no-such-session"
    call("DELETE", "/users/me/sessions/{session_id}", gone, headers=auth)
    call("POST", "/auth/password/forgot", json={"username": "alice"})
    call("POST", "/auth/password/forgot", json={})
    new_password = {"token": "not-a-token", "password": "a brand new passphrase"}
    call("POST", "/auth/password/reset", json=new_password)
    call("POST", "/auth/email/verify", json={"token": "not-a-token"})
    call("POST", "/auth/email/verify/send", json={"email": "alice@example.com"})

    carol = {"username": "carol", "password": PASSWORD}
    call("POST", "/users", json=carol)
    carol_login = call("POST", "/login", json=carol).json()
    carol_auth = {"Authorization": f"Bearer {carol_login['access_token']}"}
    confirm = "/users/me/mfa/totp/confirm"
    call("GET", "/users/me/mfa", headers=carol_auth)
    call("GET", "/users/me/mfa")
    call("POST", confirm, json={"code": "123456"}, headers=carol_auth)  # nothing pending
    proof = {"password": PASSWORD}
    call("POST", "/users/me/mfa/totp", json=proof)
    call("POST", "/users/me/mfa/totp", json={"password": "wrong"}, headers=carol_auth)
    call("POST", "/users/me/mfa/totp", json=proof, headers=carol_auth)
    secret = call("POST", "/users/me/mfa/totp", json=proof, headers=carol_auth).json()["secret"]
    code = totp.code_at(secret, totp.step_at(time.time()))
    codes = call("POST", confirm, json={"code": code}, headers=carol_auth).json()
    call("GET", "/users/me/mfa", headers=carol_auth)
    call("POST", "/users/me/passkeys/options", json=proof, headers=carol_auth)  # a code too
    step = call("POST", "/login", json=carol).json()["mfa_token"]
    call("POST", "/auth/mfa", json={"mfa_token": step, "code": "not a code"})
    call("POST", "/auth/mfa", json={"mfa_token": step, "code": codes["recovery_codes"][0]})
    call("POST", "/auth/mfa", json={"mfa_token": "", "code": ""})
    off = {"password": PASSWORD, "code": codes["recovery_codes"][1]}
    call("DELETE", "/users/me/mfa/totp", json=off, headers=carol_auth)
    call("DELETE", "/users/me/mfa/totp", json=off, headers=carol_auth)

    # Passkeys: the ceremonies' options, and what no real authenticator answered.
    call("GET", "/users/me/passkeys", headers=carol_auth)
    call("GET", "/users/me/passkeys")
    call("POST", "/users/me/passkeys/options", json=proof, headers=carol_auth)
    call("POST", "/users/me/passkeys/verify/options", headers=carol_auth)
    forged = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}
    bogus = {"challenge_token": "not-a-token", "credential": forged}
    call("POST", "/users/me/passkeys", json=bogus, headers=carol_auth)
    passkey = ("/users/me/passkeys/{passkey_id}", "/users/me/passkeys/AAAA")
    call("DELETE", *passkey, json={"password": PASSWORD}, headers=carol_auth)
    call("DELETE", *passkey, json={"password": "wrong"}, headers=carol_auth)
    call("POST", "/auth/passkey/options")
    call("POST", "/auth/passkey", json=bogus)
    call("POST", "/auth/mfa/passkey/options", json={"mfa_token": "not-a-token"})
    call("POST", "/auth/mfa", json={"mfa_token": "x", "challenge_token": "y", "credential": forged})

    uids = []
    for n in range(3):
        body = {"description": f"todo {n}", "metadata": {"n": n, "tags": ["a", "b"]}}
        uids.append(call("POST", "/todos", json=body, headers=auth).json()["uid"])
    call("POST", "/todos", json={"description": ""}, headers=auth)
    call("POST", "/todos", json={"description": "x" * 10_000}, headers=auth)
    call("POST", "/todos", content=b"x" * (2 * 1024 * 1024), headers=auth)
    call("GET", "/todos", headers=auth, params={"limit": 2})
    page = call("GET", "/todos", headers=auth, params={"limit": 2})
    call("GET", "/todos", page.links["next"]["url"].removeprefix(prefix), headers=auth)
    call("GET", "/todos", headers=auth, params={"state": "started"})
    call("GET", "/todos", headers=auth, params={"state": "nonsense", "limit": 0})
    one = f"/todos/{uids[0]}"
    call("GET", "/todos/{uid}", one, headers=auth)
    call("GET", "/todos/{uid}", "/todos/00000000-0000-7000-8000-000000000000", headers=auth)
    call("PUT", "/todos/{uid}", one, json={"state": "started"}, headers=auth)
    call("PUT", "/todos/{uid}", one, json={"state": "done"}, headers=auth)
    stale = auth | {"If-Match": '"1"'}
    call("PATCH", "/todos/{uid}", one, json={"state": "completed"}, headers=stale)
    fresh = auth | {"If-Match": '"2"'}
    call("PATCH", "/todos/{uid}", one, json={"description": "renamed"}, headers=fresh)
    call("DELETE", "/todos/{uid}", one, headers=auth)
    call("DELETE", "/todos/{uid}", one, headers=auth)

    make_admin("root")
    root = call("POST", "/login", json={"username": "root", "password": PASSWORD}).json()
    admin = {"Authorization": f"Bearer {root['access_token']}"}
    call("GET", "/admin/endpoints", headers=auth)
    call("GET", "/admin/endpoints", headers=admin)
    call("GET", "/admin/audit", headers=auth)
    page = call("GET", "/admin/audit", headers=admin, params={"kind": "login.ok", "limit": 2})
    call("GET", "/admin/audit", page.links["next"]["url"].removeprefix(prefix), headers=admin)
    call("GET", "/admin/audit", headers=admin, params={"kind": "nonsense"})
    call("GET", "/users", headers=auth)
    call("GET", "/users", headers=admin, params={"limit": 1})
    bob = call("POST", "/users", json={"username": "bob", "password": PASSWORD}).json()
    bob_path = f"/users/{bob['id']}"
    call("GET", "/users/{user_id}", bob_path, headers=auth)
    call("GET", "/users/{user_id}", bob_path, headers=admin)
    replacement = {"email": "bob@example.com", "name": "Bob", "role": "user"}
    call("PUT", "/users/{user_id}", bob_path, json=replacement, headers=admin)
    call(
        "PATCH",
        "/users/{user_id}",
        f"/users/{me['user']['id']}",
        json={"role": "admin"},
        headers=auth,
    )
    call(
        "PATCH", "/users/{user_id}", f"/users/{me['user']['id']}", json={"name": "Al"}, headers=auth
    )
    call("DELETE", "/users/{user_id}", bob_path, headers=auth)
    call("DELETE", "/users/{user_id}", bob_path, headers=admin)
    call("GET", "/users/{user_id}", bob_path, headers=admin)

    # The seeds' shapes (docs/seeds.md): seed 001's accounts by email, seed 002's /v1 routes.
    denis = {"email": "denis@example.com", "name": "Denis", "password": "denis has a secret"}
    call("POST", "/user", json=denis)
    call("POST", "/user", json=denis)
    by_email = "/user/denis%40example.com"
    call("PUT", "/user/{email}", by_email, json={"name": "D", "password": "newsecret"})
    seed_put = {"name": "Denis Updated", "password": "newsecret", "last_login": None}
    call("PUT", "/user/{email}", by_email, json=seed_put, headers=admin)
    call("PATCH", "/user/{email}", by_email, json={"name": "Denny"}, headers=auth)
    call("PATCH", "/user/{email}", by_email, json={"name": "Denny"}, headers=admin)
    call("DELETE", "/user/{email}", by_email, headers=admin)
    call("DELETE", "/user/{email}", by_email, headers=admin)
    call("GET", "/v1/manage/hc")
    v1_form = {"email": "alice@example.com", "password": PASSWORD}
    call("POST", "/v1/auth/token", files={"email": (None, "x"), "password": (None, "y")})
    call("POST", "/v1/auth/token", files={key: (None, value) for key, value in v1_form.items()})
    call("GET", "/v1/users/whoami", headers=auth)
    call("GET", "/v1/admin/endpoints", headers=auth)
    call("GET", "/v1/admin/endpoints", headers=admin)
    call("GET", "/v1/swagger.json")
    call("GET", "/v1/openapi.json")
    call("GET", "/v1/docs")
    call("GET", "/v1/redoc")

    call("GET", "/messages")
    call("POST", "/messages", json={"text": "anonymous"})
    call("POST", "/messages", json={"text": "  Hello, board  "}, headers=auth)
    call("POST", "/messages", json={"text": " "}, headers=auth)
    call("POST", "/messages", json={"text": "second"}, headers=admin)
    page = call("GET", "/messages", params={"limit": 1})
    call("GET", "/messages", page.links["next"]["url"].removeprefix(prefix))

    lamp = {"name": "Oak Desk Lamp", "description": "Warm light", "price": 24.99, "stock": 3}
    call("POST", "/products", json=lamp, headers=auth)
    call("POST", "/products", json=lamp | {"price": 1.999}, headers=admin)
    product = call("POST", "/products", json=lamp, headers=admin).json()
    call("POST", "/products", json=lamp | {"name": "Bamboo Mug", "price": 9}, headers=admin)
    one = f"/products/{product['id']}"
    call("PUT", "/products/{product_id}", one, json={"name": "Lamp", "price": 20}, headers=admin)
    call("PATCH", "/products/{product_id}", one, json={"stock": 0}, headers=stale | admin)
    call("PATCH", "/products/{product_id}", one, json={"stock": 0}, headers=admin)
    call("GET", "/products")
    call("GET", "/products/{product_id}", one)
    call("GET", "/index")
    call("GET", "/index", params={"limit": 1})
    if make_credential is not None:
        service = make_credential("scenario")
        call("GET", "/products", signed=service)
        page = call("GET", "/products", "/products?limit=1", signed=service)
        after = page.links["next"]["url"].removeprefix(prefix)
        call("GET", "/products", after, signed=service)
        call("GET", "/products/{product_id}", one, signed=service)
        wrong = Credentials(service.access_key, service.secret_key[::-1])
        call("GET", "/products", signed=wrong)
    call("DELETE", "/products/{product_id}", one, headers=auth)
    call("DELETE", "/products/{product_id}", one, headers=admin)
    call("DELETE", "/products/{product_id}", one, headers=admin)
    call("DELETE", "/users/me/sessions", headers=auth)  # last: alice's other sessions end

    call("POST", "/auth/logout", headers=auth)
    call("GET", "/users/me", headers=auth)
    call("POST", "/auth/logout", headers=auth)
    return call.exchanges
