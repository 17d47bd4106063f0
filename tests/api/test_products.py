"""The products API over real HTTP: reads need an AWS Signature V4 (made here by botocore, as a
calling service would), writes need an administrator's bearer token; GET /index is public."""

import hashlib
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nimbus.container import Container
from tests.factories import Account

REGION = "us-east-1"
SERVICE = "execute-api"

HeaderList = list[tuple[str, str]]
Headers = dict[str, str]


# --- signing helpers ---------------------------------------------------------------------------


def _url(client: httpx.Client, path: str) -> str:
    return str(client.base_url).rstrip("/") + path


def sign(
    client: httpx.Client,
    key: Credentials,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: Headers | None = None,
    region: str = REGION,
    service: str = SERVICE,
) -> HeaderList:
    """The headers botocore sends for this request: the caller's own, X-Amz-Date, Authorization."""
    request = AWSRequest(method=method, url=_url(client, path), data=body, headers=headers or {})
    SigV4Auth(key, service, region).add_auth(request)
    return list(request.headers.items())


def signed_get(client: httpx.Client, key: Credentials, path: str, **options: Any) -> httpx.Response:
    return client.get(path, headers=sign(client, key, "GET", path, **options))


def presign(client: httpx.Client, key: Credentials, path: str, *, expires: int = 60) -> str:
    request = AWSRequest(method="GET", url=_url(client, path))
    SigV4QueryAuth(key, SERVICE, REGION, expires=expires).add_auth(request)
    return str(request.url)


def signing_clock(offset: timedelta) -> Callable[..., datetime]:
    """A stand-in for botocore.auth.get_current_datetime: the time `offset` from now."""

    def now(*args: Any, **kwargs: Any) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None) + offset

    return now


def next_link(response: httpx.Response) -> str | None:
    link = response.headers.get("Link")
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link) if link else None
    return match.group(1) if match else None


def assert_rejected(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == code, response.text


def _replace_field(authorization: str, name: str, value: str | None) -> str:
    """The Authorization header with one of its Name=value fields changed, or dropped (None)."""
    algorithm, _, rest = authorization.partition(" ")
    fields = [part.strip() for part in rest.split(",")]
    kept = [
        part if not part.startswith(f"{name}=") else f"{name}={value}"
        for part in fields
        if value is not None or not part.startswith(f"{name}=")
    ]
    return f"{algorithm} {', '.join(kept)}"


def _with_header(headers: HeaderList, name: str, value: str) -> HeaderList:
    return [(k, value if k.lower() == name.lower() else v) for k, v in headers]


def _authorization(headers: HeaderList) -> str:
    return next(value for name, value in headers if name.lower() == "authorization")


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def key(container: Container) -> Credentials:
    """A service credential as `nimbus credentials create` issues it."""
    credential, secret = container.credentials.create("inventory-reader")
    return Credentials(credential.access_key_id, secret)


def _make(container: Container, count: int) -> list[str]:
    return [
        container.products.create(f"Product {i}", f"Description {i}", 100 + i, i).id
        for i in range(count)
    ]


@pytest.fixture
def product_id(container: Container) -> str:
    return container.products.create("Widget", "A widget", 1999, 7).id


# --- signed reads ------------------------------------------------------------------------------


def test_signed_list_is_a_json_array_of_ten_with_a_link_to_the_next_page(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    made = _make(container, 12)
    response = signed_get(client, key, "/products")
    assert response.status_code == 200, response.text
    listed = response.json()
    assert isinstance(listed, list)
    assert [product["id"] for product in listed] == made[:10]
    assert listed[0] == {
        "id": made[0],
        "name": "Product 0",
        "description": "Description 0",
        "price": 1.0,
        "stock": 0,
        "created_at": listed[0]["created_at"],
        "updated_at": listed[0]["updated_at"],
        "version": 1,
    }
    link = next_link(response)
    assert link is not None
    assert link.startswith("/products?")
    assert "limit=10" in link


def test_following_the_signed_link_returns_the_rest_without_overlap(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    made = _make(container, 12)
    first = signed_get(client, key, "/products")
    link = next_link(first)
    assert link is not None
    second = signed_get(client, key, link)
    assert second.status_code == 200, second.text
    assert [product["id"] for product in second.json()] == made[10:]
    assert next_link(second) is None


def test_small_pages_walk_the_whole_inventory_once(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    made = _make(container, 7)
    seen: list[str] = []
    path: str | None = "/products?limit=3"
    pages = 0
    while path is not None:
        response = signed_get(client, key, path)
        assert response.status_code == 200, response.text
        seen += [product["id"] for product in response.json()]
        pages += 1
        path = next_link(response)
    assert pages == 3
    assert seen == made


def test_an_empty_inventory_is_an_empty_array_without_a_link(
    client: httpx.Client, key: Credentials
) -> None:
    response = signed_get(client, key, "/products")
    assert response.status_code == 200
    assert response.json() == []
    assert "Link" not in response.headers


@pytest.mark.store_independent
@pytest.mark.parametrize("limit", ["0", "101", "-1", "many"])
def test_signed_list_rejects_a_limit_out_of_bounds(
    client: httpx.Client, key: Credentials, limit: str
) -> None:
    response = signed_get(client, key, f"/products?limit={limit}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "query.limit"


def test_signed_list_accepts_the_largest_limit(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    _make(container, 3)
    response = signed_get(client, key, "/products?limit=100")
    assert response.status_code == 200
    assert len(response.json()) == 3


def test_signed_get_returns_one_product_with_its_etag(
    client: httpx.Client, key: Credentials, product_id: str
) -> None:
    response = signed_get(client, key, f"/products/{product_id}")
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"1"'
    product = response.json()
    assert (product["id"], product["name"], product["description"]) == (
        product_id,
        "Widget",
        "A widget",
    )
    assert product["price"] == 19.99
    assert product["stock"] == 7


@pytest.mark.parametrize(
    "unknown", ["0190b5c4-0000-7000-8000-000000000000", "no-such-product", "caf%C3%A9%20x"]
)
def test_signed_get_of_an_unknown_id_is_404(
    client: httpx.Client, key: Credentials, unknown: str
) -> None:
    # Also shows that a signature over a percent-encoded path verifies: 404, not 403.
    response = signed_get(client, key, f"/products/{unknown}")
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


# --- no signature ------------------------------------------------------------------------------


@pytest.mark.store_independent
@pytest.mark.parametrize("path", ["/products", "/products/0190b5c4-0000-7000-8000-000000000000"])
def test_an_unsigned_read_is_403_missing_authentication_token(
    client: httpx.Client, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 403
    assert response.json() == {
        "message": "Missing Authentication Token",
        "code": "missing_authentication_token",
    }


@pytest.mark.store_independent
def test_a_bearer_token_is_not_a_signature(client: httpx.Client, admin: Account) -> None:
    assert_rejected(client.get("/products", headers=admin.headers), "incomplete_signature")


# --- signatures that do not match the request --------------------------------------------------


@pytest.mark.store_independent
def test_a_wrong_secret_is_signature_mismatch_with_a_clear_message(
    client: httpx.Client, key: Credentials
) -> None:
    wrong = Credentials(key.access_key, key.secret_key + "x")
    response = signed_get(client, wrong, "/products")
    assert_rejected(response, "signature_mismatch")
    assert "signature we calculated does not match" in response.json()["message"]


@pytest.mark.store_independent
def test_a_tampered_query_is_rejected(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products?limit=5")
    assert client.get("/products?limit=5", headers=headers).status_code == 200
    assert_rejected(client.get("/products?limit=6", headers=headers), "signature_mismatch")


@pytest.mark.store_independent
def test_an_added_query_parameter_is_rejected(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products?limit=5")
    assert_rejected(client.get("/products?limit=5&x=1", headers=headers), "signature_mismatch")


@pytest.mark.store_independent
def test_a_tampered_path_is_rejected(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    signed_for, other = _make(container, 2)
    headers = sign(client, key, "GET", f"/products/{signed_for}")
    assert_rejected(client.get(f"/products/{other}", headers=headers), "signature_mismatch")


@pytest.mark.store_independent
def test_a_changed_signed_header_is_rejected(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products", headers={"X-Request-Id": "one"})
    assert client.get("/products", headers=headers).status_code == 200
    changed = _with_header(headers, "X-Request-Id", "two")
    assert_rejected(client.get("/products", headers=changed), "signature_mismatch")


@pytest.mark.store_independent
def test_a_second_copy_of_a_signed_header_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    headers = sign(client, key, "GET", "/products", headers={"X-Request-Id": "one"})
    added = [*headers, ("X-Request-Id", "two")]
    assert_rejected(client.get("/products", headers=added), "signature_mismatch")


@pytest.mark.store_independent
def test_a_signed_header_left_out_is_rejected(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products", headers={"X-Request-Id": "one"})
    dropped = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
    assert_rejected(client.get("/products", headers=dropped), "incomplete_signature")


@pytest.mark.store_independent
def test_a_header_dropped_from_signed_headers_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    headers = sign(client, key, "GET", "/products", headers={"X-Request-Id": "one"})
    fewer = _replace_field(_authorization(headers), "SignedHeaders", "host;x-amz-date")
    response = client.get("/products", headers=_with_header(headers, "Authorization", fewer))
    assert_rejected(response, "signature_mismatch")


@pytest.mark.store_independent
def test_an_unsigned_header_may_be_added(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products")
    response = client.get("/products", headers=[*headers, ("X-Not-Signed", "anything")])
    assert response.status_code == 200, response.text


@pytest.mark.store_independent
def test_a_body_changed_after_signing_is_rejected(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products", body=b'{"n": 1}')
    signed = client.request("GET", "/products", content=b'{"n": 1}', headers=headers)
    assert signed.status_code == 200, signed.text
    changed = client.request("GET", "/products", content=b'{"n": 2}', headers=headers)
    assert_rejected(changed, "signature_mismatch")


@pytest.mark.store_independent
def test_a_content_sha256_that_is_not_the_bodys_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    # botocore signs the declared hash instead of hashing the body: the server must compare.
    declared = hashlib.sha256(b"some other body").hexdigest()
    headers = sign(client, key, "GET", "/products", headers={"X-Amz-Content-SHA256": declared})
    response = client.get("/products", headers=headers)
    assert_rejected(response, "signature_mismatch")
    assert "x-amz-content-sha256" in response.json()["message"]


@pytest.mark.store_independent
def test_a_content_sha256_that_is_the_bodys_is_accepted(
    client: httpx.Client, key: Credentials
) -> None:
    body = b"payload"
    declared = hashlib.sha256(body).hexdigest()
    headers = sign(
        client, key, "GET", "/products", body=body, headers={"X-Amz-Content-SHA256": declared}
    )
    assert client.request("GET", "/products", content=body, headers=headers).status_code == 200


# --- time --------------------------------------------------------------------------------------


@pytest.mark.store_independent
def test_a_signature_six_minutes_old_is_expired(
    client: httpx.Client, key: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", signing_clock(-timedelta(minutes=6)))
    response = signed_get(client, key, "/products")
    assert_rejected(response, "signature_expired")
    assert "Signature expired" in response.json()["message"]


@pytest.mark.store_independent
def test_a_signature_six_minutes_ahead_is_not_yet_current(
    client: httpx.Client, key: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", signing_clock(timedelta(minutes=6)))
    assert_rejected(signed_get(client, key, "/products"), "signature_not_yet_current")


@pytest.mark.store_independent
@pytest.mark.parametrize("minutes", [-4, 4])
def test_a_clock_four_minutes_off_is_within_the_allowed_skew(
    client: httpx.Client, key: Credentials, monkeypatch: pytest.MonkeyPatch, minutes: int
) -> None:
    clock = signing_clock(timedelta(minutes=minutes))
    monkeypatch.setattr("botocore.auth.get_current_datetime", clock)
    assert signed_get(client, key, "/products").status_code == 200


@pytest.mark.store_independent
def test_an_x_amz_date_other_than_the_signed_one_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    headers = sign(client, key, "GET", "/products")
    date = next(v for k, v in headers if k.lower() == "x-amz-date")
    later = (datetime.strptime(date, "%Y%m%dT%H%M%SZ") + timedelta(seconds=1)).strftime(
        "%Y%m%dT%H%M%SZ"
    )
    response = client.get("/products", headers=_with_header(headers, "X-Amz-Date", later))
    assert response.status_code == 403
    assert response.json()["code"] in {"signature_mismatch", "invalid_credential_scope"}


# --- who signed --------------------------------------------------------------------------------


def test_a_revoked_key_is_rejected(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    assert signed_get(client, key, "/products").status_code == 200
    container.credentials.revoke(key.access_key)
    assert_rejected(signed_get(client, key, "/products"), "access_key_revoked")


@pytest.mark.parametrize("access_key", ["NIMBAAAAAAAAAAAAAAAA", "AKIAIOSFODNN7EXAMPLE", "nimb"])
def test_an_access_key_nimbus_did_not_issue_is_rejected(
    client: httpx.Client, key: Credentials, access_key: str
) -> None:
    stranger = Credentials(access_key, key.secret_key)
    assert_rejected(signed_get(client, stranger, "/products"), "invalid_access_key")


@pytest.mark.store_independent
def test_a_signature_for_another_region_is_rejected(client: httpx.Client, key: Credentials) -> None:
    response = signed_get(client, key, "/products", region="eu-west-1")
    assert_rejected(response, "invalid_credential_scope")
    assert REGION in response.json()["message"]


@pytest.mark.store_independent
def test_a_signature_for_another_service_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    response = signed_get(client, key, "/products", service="s3")
    assert_rejected(response, "invalid_credential_scope")
    assert SERVICE in response.json()["message"]


# --- malformed signatures: always 403, never 5xx -----------------------------------------------

_CREDENTIAL = "NIMBAAAAAAAAAAAAAAAA/20260101/us-east-1/execute-api/aws4_request"
_HEX = "0" * 64


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 junk",
        "AWS4-HMAC-SHA256 ,,,",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, Signature={_HEX}",
        f"AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={_HEX}",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, SignedHeaders=host;x-amz-date",
        f"AWS4-HMAC-SHA256 Credential=NIMB/us-east-1, SignedHeaders=host, Signature={_HEX}",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, SignedHeaders=x-amz-date;host, "
        f"Signature={_HEX}",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, SignedHeaders=Host, Signature={_HEX}",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, SignedHeaders=host;;x, Signature={_HEX}",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, SignedHeaders=host, Signature=XYZ",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, SignedHeaders=host, Signature={'AB' * 32}",
        f"AWS4-HMAC-SHA256 Credential={_CREDENTIAL}, Credential={_CREDENTIAL}, "
        f"SignedHeaders=host, Signature={_HEX}",
        "AWS4-HMAC-SHA1 Credential=a, SignedHeaders=host, Signature=b",
        "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "=",
    ],
)
def test_a_malformed_authorization_header_is_403_incomplete_signature(
    client: httpx.Client, authorization: str
) -> None:
    response = client.get(
        "/products", headers={"Authorization": authorization, "X-Amz-Date": "20260101T000000Z"}
    )
    assert_rejected(response, "incomplete_signature")


@pytest.mark.store_independent
@pytest.mark.parametrize("field", ["Credential", "SignedHeaders", "Signature"])
def test_a_real_signature_missing_a_field_is_403(
    client: httpx.Client, key: Credentials, field: str
) -> None:
    headers = sign(client, key, "GET", "/products")
    broken = _replace_field(_authorization(headers), field, None)
    response = client.get("/products", headers=_with_header(headers, "Authorization", broken))
    assert_rejected(response, "incomplete_signature")
    assert field in response.json()["message"]


@pytest.mark.store_independent
def test_a_signed_request_without_x_amz_date_is_403(client: httpx.Client, key: Credentials) -> None:
    headers = [(k, v) for k, v in sign(client, key, "GET", "/products") if k != "X-Amz-Date"]
    assert_rejected(client.get("/products", headers=headers), "incomplete_signature")


@pytest.mark.store_independent
def test_a_request_signed_with_a_date_header_is_accepted(
    client: httpx.Client, key: Credentials
) -> None:
    """botocore signs with Date instead of X-Amz-Date when the request already has one."""
    headers = sign(client, key, "GET", "/products", headers={"Date": "placeholder"})
    assert "X-Amz-Date" not in dict(headers)
    assert client.get("/products", headers=headers).status_code == 200


@pytest.mark.store_independent
@pytest.mark.parametrize("date", ["not a date", "Fri, 31 Dec 9999 23:59:59 -2359"])
def test_an_unreadable_date_header_is_403(
    client: httpx.Client, key: Credentials, date: str
) -> None:
    headers = sign(client, key, "GET", "/products", headers={"Date": "placeholder"})
    headers = _with_header(headers, "Date", date)
    assert_rejected(client.get("/products", headers=headers), "incomplete_signature")


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "date", ["yesterday", "2026-01-01T00:00:00Z", "20261301T000000Z", "", "99999999T999999Z"]
)
def test_an_unreadable_x_amz_date_is_403(client: httpx.Client, key: Credentials, date: str) -> None:
    headers = _with_header(sign(client, key, "GET", "/products"), "X-Amz-Date", date)
    assert_rejected(client.get("/products", headers=headers), "incomplete_signature")


@pytest.mark.store_independent
def test_two_authorization_headers_are_403(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products")
    twice = [*headers, ("Authorization", _authorization(headers))]
    assert_rejected(client.get("/products", headers=twice), "incomplete_signature")


@pytest.mark.store_independent
def test_the_host_header_must_be_signed(client: httpx.Client, key: Credentials) -> None:
    headers = sign(client, key, "GET", "/products")
    no_host = _replace_field(_authorization(headers), "SignedHeaders", "x-amz-date")
    response = client.get("/products", headers=_with_header(headers, "Authorization", no_host))
    assert_rejected(response, "incomplete_signature")


# --- presigned URLs ----------------------------------------------------------------------------


def test_a_presigned_url_is_accepted(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    made = _make(container, 3)
    response = client.get(presign(client, key, "/products?limit=2"))
    assert response.status_code == 200, response.text
    assert [product["id"] for product in response.json()] == made[:2]


def test_a_presigned_url_for_one_product_is_accepted(
    client: httpx.Client, key: Credentials, product_id: str
) -> None:
    response = client.get(presign(client, key, f"/products/{product_id}"))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == product_id


@pytest.mark.store_independent
def test_a_presigned_url_past_its_expiry_is_rejected(
    client: httpx.Client, key: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", signing_clock(-timedelta(minutes=2)))
    response = client.get(presign(client, key, "/products", expires=60))
    assert_rejected(response, "signature_expired")
    assert "Request has expired" in response.json()["message"]


@pytest.mark.store_independent
def test_a_presigned_url_valid_longer_than_five_minutes_outlives_the_skew(
    client: httpx.Client, key: Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", signing_clock(-timedelta(minutes=10)))
    assert client.get(presign(client, key, "/products", expires=3600)).status_code == 200


@pytest.mark.store_independent
def test_a_tampered_presigned_url_is_rejected(client: httpx.Client, key: Credentials) -> None:
    url = presign(client, key, "/products?limit=2")
    assert_rejected(client.get(url.replace("limit=2", "limit=3")), "signature_mismatch")


@pytest.mark.store_independent
def test_a_presigned_url_with_a_wrong_secret_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    wrong = Credentials(key.access_key, "not-the-secret")
    assert_rejected(client.get(presign(client, wrong, "/products")), "signature_mismatch")


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "query",
    [
        "X-Amz-Signature=" + _HEX,
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + _HEX,
        "X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=" + _CREDENTIAL.replace("/", "%2F")
        + "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + _HEX,
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + _CREDENTIAL.replace("/", "%2F")
        + "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=0&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + _HEX,
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + _CREDENTIAL.replace("/", "%2F")
        + "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + _HEX,
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + _CREDENTIAL.replace("/", "%2F")
        + "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=-5&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=" + _HEX,
        "X-Amz-Signature=" + _HEX + "&X-Amz-Signature=" + _HEX,
    ],
)  # fmt: skip
def test_a_malformed_presigned_url_is_403_incomplete_signature(
    client: httpx.Client, query: str
) -> None:
    assert_rejected(client.get(f"/products?{query}"), "incomplete_signature")


_FAR_FUTURE_PRESIGNED = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" + _CREDENTIAL.replace("/", "%2F")
    + "&X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=" + _HEX
)  # fmt: skip


@pytest.mark.store_independent
def test_a_presigned_url_dated_at_the_end_of_time_is_403_not_500(client: httpx.Client) -> None:
    response = client.get(f"/products?{_FAR_FUTURE_PRESIGNED}")
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "signature_not_yet_current"


@pytest.mark.store_independent
@pytest.mark.parametrize("expires", ["%C2%B2", "%D9%A1%D9%A2"])  # "²", Arabic-Indic "12"
def test_a_presigned_expiry_in_non_ascii_digits_is_403_not_500(
    client: httpx.Client, expires: str
) -> None:
    # str.isdigit() is true for both; int() reads the second and fails on the first.
    query = _FAR_FUTURE_PRESIGNED.replace("99991231", "20260101").replace(
        "X-Amz-Expires=604800", f"X-Amz-Expires={expires}"
    )
    response = client.get(f"/products?{query}")
    assert response.status_code == 403, response.text


# --- paths and queries as sent -----------------------------------------------------------------


def test_a_trailing_slash_is_verified_as_sent(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    _make(container, 2)
    response = signed_get(client, key, "/products/")
    assert response.status_code == 200, response.text
    assert len(response.json()) == 2


@pytest.mark.store_independent
def test_a_trailing_slash_signed_without_it_is_rejected(
    client: httpx.Client, key: Credentials
) -> None:
    headers = sign(client, key, "GET", "/products")
    assert_rejected(client.get("/products/", headers=headers), "signature_mismatch")


def test_percent_encoded_query_values_verify(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    made = _make(container, 5)
    first = signed_get(client, key, "/products?limit=2")
    link = next_link(first)
    assert link is not None
    cursor = re.search(r"cursor=([^&]+)", link)
    assert cursor is not None
    path = f"/products?limit=2&cursor={cursor.group(1)}&note=caf%C3%A9%20%2F%20%26%3D%2B~"
    response = signed_get(client, key, path)
    assert response.status_code == 200, response.text
    assert [product["id"] for product in response.json()] == made[2:4]


def test_a_link_from_a_query_with_a_space_can_be_followed(
    client: httpx.Client, container: Container, key: Credentials
) -> None:
    made = _make(container, 3)
    first = signed_get(client, key, "/products?limit=2&note=a%20b")
    assert first.status_code == 200, first.text
    link = next_link(first)
    assert link is not None
    response = signed_get(client, key, link)
    assert response.status_code == 200, response.text
    assert [product["id"] for product in response.json()] == made[2:]


@pytest.mark.store_independent
def test_repeated_query_parameters_verify(client: httpx.Client, key: Credentials) -> None:
    response = signed_get(client, key, "/products?tag=b&tag=a&tag=&limit=1")
    assert response.status_code == 200, response.text


# --- administrator writes ----------------------------------------------------------------------


def _post(client: httpx.Client, admin: Account, **body: Any) -> httpx.Response:
    return client.post(
        "/products", json={"name": "Widget", "price": 19.99, **body}, headers=admin.headers
    )


def test_admin_creates_a_product_with_an_etag_and_a_decimal_price(
    client: httpx.Client, admin: Account, key: Credentials
) -> None:
    response = _post(client, admin, description="A widget", stock=3)
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    created = response.json()
    assert created["price"] == 19.99
    assert isinstance(created["price"], float)
    assert (created["name"], created["description"], created["stock"]) == ("Widget", "A widget", 3)
    assert created["version"] == 1
    fetched = signed_get(client, key, f"/products/{created['id']}")
    assert fetched.json() == created


def test_create_defaults_description_and_stock(client: httpx.Client, admin: Account) -> None:
    created = _post(client, admin).json()
    assert (created["description"], created["stock"]) == ("", 0)


@pytest.mark.parametrize("price", [0, 0.01, 0.1, 0.29, 1.1, 19.99, 1234.5, 1_000_000])
def test_prices_keep_their_cents_exactly(
    client: httpx.Client, container: Container, admin: Account, price: float
) -> None:
    created = _post(client, admin, price=price)
    assert created.status_code == 201, created.text
    assert created.json()["price"] == price
    assert container.products.get(created.json()["id"]).price_cents == round(price * 100)


def test_put_replaces_every_field_and_defaults_the_rest(
    client: httpx.Client, admin: Account
) -> None:
    created = _post(client, admin, description="A widget", stock=3).json()
    response = client.put(
        f"/products/{created['id']}", json={"name": "Gadget", "price": 5}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"2"'
    replaced = response.json()
    assert (replaced["name"], replaced["price"]) == ("Gadget", 5)
    assert (replaced["description"], replaced["stock"]) == ("", 0)
    assert replaced["version"] == 2
    assert replaced["created_at"] == created["created_at"]


def test_patch_changes_only_the_fields_sent(client: httpx.Client, admin: Account) -> None:
    created = _post(client, admin, description="A widget", stock=3).json()
    response = client.patch(f"/products/{created['id']}", json={"stock": 9}, headers=admin.headers)
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["stock"] == 9
    assert (patched["name"], patched["description"], patched["price"]) == (
        "Widget",
        "A widget",
        19.99,
    )
    assert patched["version"] == 2
    assert response.headers["ETag"] == '"2"'


def test_if_match_with_the_current_version_applies(client: httpx.Client, admin: Account) -> None:
    created = _post(client, admin).json()
    response = client.patch(
        f"/products/{created['id']}",
        json={"stock": 1},
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.Client, container: Container, admin: Account, method: str
) -> None:
    created = _post(client, admin).json()
    client.patch(f"/products/{created['id']}", json={"stock": 1}, headers=admin.headers)
    body = {"name": "Stale", "price": 1} if method != "DELETE" else None
    response = client.request(
        method,
        f"/products/{created['id']}",
        json=body,
        headers={**admin.headers, "If-Match": '"1"'},
    )
    assert response.status_code == 412, response.text
    assert response.json()["code"] == "precondition_failed"
    current = container.products.get(created["id"])
    assert (current.name, current.stock, current.version) == ("Widget", 1, 2)


@pytest.mark.store_independent
def test_if_match_in_unusual_digits_is_412_not_500(client: httpx.Client, admin: Account) -> None:
    created = _post(client, admin).json()
    # "²" in Latin-1, the charset Starlette decodes header bytes with: str.isdigit() says yes.
    headers = [
        (b"Authorization", admin.headers["Authorization"].encode()),
        (b"If-Match", b'"\xb2"'),
    ]
    response = client.patch(f"/products/{created['id']}", json={"stock": 1}, headers=headers)
    assert response.status_code == 412, response.text


def test_delete_removes_the_product(client: httpx.Client, admin: Account, key: Credentials) -> None:
    created = _post(client, admin).json()
    response = client.delete(f"/products/{created['id']}", headers=admin.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert signed_get(client, key, f"/products/{created['id']}").status_code == 404
    again = client.delete(f"/products/{created['id']}", headers=admin.headers)
    assert again.status_code == 404


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_writes_to_an_unknown_product_are_404(
    client: httpx.Client, admin: Account, method: str
) -> None:
    body = {"name": "Widget", "price": 1} if method != "DELETE" else None
    response = client.request(
        method, "/products/0190b5c4-0000-7000-8000-000000000000", json=body, headers=admin.headers
    )
    assert response.status_code == 404, response.text


_WRITES: Sequence[tuple[str, str]] = [
    ("POST", "/products"),
    ("PUT", "/products/{id}"),
    ("PATCH", "/products/{id}"),
    ("DELETE", "/products/{id}"),
]


@pytest.mark.store_independent
@pytest.mark.parametrize(("method", "path"), _WRITES)
def test_a_normal_user_may_not_write_products(
    client: httpx.Client,
    container: Container,
    alice: Account,
    product_id: str,
    method: str,
    path: str,
) -> None:
    body = {"name": "Mine", "price": 1} if method != "DELETE" else None
    response = client.request(method, path.format(id=product_id), json=body, headers=alice.headers)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "admin_only"
    assert container.products.get(product_id).name == "Widget"
    assert len(container.products.list(limit=10, cursor=None).items) == 1


@pytest.mark.store_independent
@pytest.mark.parametrize(("method", "path"), _WRITES)
def test_writes_without_a_token_are_401(
    client: httpx.Client, container: Container, product_id: str, method: str, path: str
) -> None:
    body = {"name": "Mine", "price": 1} if method != "DELETE" else None
    response = client.request(method, path.format(id=product_id), json=body)
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert container.products.get(product_id).version == 1


@pytest.mark.store_independent
@pytest.mark.parametrize(("method", "path"), _WRITES)
def test_a_signature_does_not_authorize_writes(
    client: httpx.Client,
    container: Container,
    key: Credentials,
    product_id: str,
    method: str,
    path: str,
) -> None:
    url = path.format(id=product_id)
    body = b'{"name": "Mine", "price": 1}' if method != "DELETE" else b""
    headers = sign(
        client, key, method, url, body=body, headers={"Content-Type": "application/json"}
    )
    response = client.request(method, url, content=body, headers=headers)
    assert response.status_code in {401, 403}, response.text
    assert container.products.get(product_id).version == 1


_INVALID_BODIES: list[dict[str, Any]] = [
    {"name": "Widget", "price": -1},
    {"name": "Widget", "price": 1.999},
    {"name": "Widget", "price": 1_000_000.01},
    {"name": "Widget", "price": 10**12},
    {"name": "", "price": 1},
    {"name": "   ", "price": 1},
    {"name": "Wid\x00get", "price": 1},
    {"name": "Widget", "description": "nul\x00", "price": 1},
    {"name": "x" * 201, "price": 1},
    {"name": "Widget", "price": 1, "colour": "red"},
    {"name": "Widget", "price": 1, "stock": -1},
    {"name": "Widget", "price": 1, "stock": 1.5},
    {"name": "Widget", "price": "NaN"},
    {"name": "Widget", "price": None},
    {"name": "Widget"},
    {"price": 1},
]


@pytest.mark.store_independent
@pytest.mark.parametrize("body", _INVALID_BODIES)
def test_create_rejects_an_invalid_body_and_adds_nothing(
    client: httpx.Client, container: Container, admin: Account, body: dict[str, Any]
) -> None:
    response = client.post("/products", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert container.products.list(limit=10, cursor=None).items == []


@pytest.mark.store_independent
@pytest.mark.parametrize("body", _INVALID_BODIES)
def test_put_rejects_an_invalid_body_and_changes_nothing(
    client: httpx.Client, container: Container, admin: Account, product_id: str, body: Any
) -> None:
    before = container.products.get(product_id)
    response = client.put(f"/products/{product_id}", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert container.products.get(product_id) == before


@pytest.mark.store_independent
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"price": -1},
        {"price": 1.999},
        {"price": 1_000_000.01},
        {"name": " "},
        {"name": None},
        {"name": "a\x00"},
        {"stock": None},
        {"id": "something-else"},
        {"version": 5},
    ],
)
def test_patch_rejects_an_invalid_body_and_changes_nothing(
    client: httpx.Client,
    container: Container,
    admin: Account,
    product_id: str,
    body: dict[str, Any],
) -> None:
    before = container.products.get(product_id)
    response = client.patch(f"/products/{product_id}", json=body, headers=admin.headers)
    assert response.status_code == 422, response.text
    assert container.products.get(product_id) == before


# --- GET /index --------------------------------------------------------------------------------


def test_index_is_a_public_html_page_listing_names_and_prices(
    client: httpx.Client, container: Container
) -> None:
    container.products.create("Widget", "A widget", 1999, 3)
    container.products.create("Gadget", "", 123450, 1)
    response = client.get("/index")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Widget" in response.text
    assert "19.99" in response.text
    assert "Gadget" in response.text
    assert "1,234.50" in response.text
    assert 'rel="next"' not in response.text


def test_index_with_no_products_says_so(client: httpx.Client) -> None:
    response = client.get("/index")
    assert response.status_code == 200
    assert "No products yet" in response.text


def test_index_escapes_product_text(client: httpx.Client, container: Container) -> None:
    container.products.create("<script>alert(1)</script>", '<img src=x onerror="y">', 100, 1)
    page = client.get("/index").text
    assert "<script>" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.store_independent
def test_index_sends_a_content_security_policy(client: httpx.Client) -> None:
    response = client.get("/index")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_index_pages_with_a_next_link_past_ten_products(
    client: httpx.Client, container: Container
) -> None:
    _make(container, 11)
    first = client.get("/index")
    assert first.text.count("<tr><td>") == 10
    match = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert match is not None
    second = client.get("/index" + unescape(match.group(1)))
    assert second.status_code == 200
    assert "Product 10" in second.text
    assert second.text.count("<tr><td>") == 1
    assert 'rel="next"' not in second.text


@pytest.mark.store_independent
def test_index_ignores_credentials_it_does_not_need(client: httpx.Client, key: Credentials) -> None:
    assert client.get("/index", headers={"Authorization": "Bearer junk"}).status_code == 200
    assert signed_get(client, key, "/index").status_code == 200
