"""nimbus.security.sigv4 against botocore, AWS's own signer: for the same request both must build
the same canonical request, and nimbus must accept the signature botocore makes."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nimbus.domain.errors import SignatureRejected
from nimbus.security import sigv4
from nimbus.security.sigv4 import SignedRequest

NOW = datetime(2026, 11, 21, 10, 15, 0, tzinfo=UTC)
STAMP = "20261121T101500Z"
REGION = "us-east-1"
SERVICE = "execute-api"
HOST = "api.example.com"
KEY = Credentials("NIMBAAAAAAAAAAAAAAAA", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
CREDENTIAL = f"{KEY.access_key}/20261121/{REGION}/{SERVICE}/aws4_request"
HEX = "0123456789abcdef" * 4


def _botocore_now(*args: Any, **kwargs: Any) -> datetime:
    return NOW.replace(tzinfo=None)  # botocore's own clock gives naive UTC


@pytest.fixture(autouse=True)
def _botocore_signs_at_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", _botocore_now)


class RecordingSigV4Auth(SigV4Auth):
    """botocore's header signer, keeping the canonical request it signed."""

    canonical = ""

    def canonical_request(self, request: AWSRequest) -> str:
        self.canonical = super().canonical_request(request)
        return self.canonical


class RecordingSigV4QueryAuth(SigV4QueryAuth):
    """botocore's presigned-URL signer, keeping the canonical request it signed."""

    canonical = ""

    def canonical_request(self, request: AWSRequest) -> str:
        self.canonical = super().canonical_request(request)
        return self.canonical


@dataclass(frozen=True)
class Case:
    """A request as it goes on the wire: path and query already percent-encoded."""

    target: str
    method: str = "GET"
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""


def _case(
    target: str, *, method: str = "GET", headers: Sequence[tuple[str, str]] = (), body: bytes = b""
) -> Any:
    case = Case(target, method, headers, body)
    label = f"{method} {target} {[name for name, _ in headers]} {len(body)}B"
    return pytest.param(case, id=label)


CASES = [
    # paths
    _case("/"),
    _case("/products"),
    _case("/products/"),
    _case("/products/0190b5c4-0000-7000-8000-000000000000"),
    _case("/products/a%20b"),
    _case("/products/caf%C3%A9"),
    _case("/products/%E6%97%A5%E6%9C%AC/%F0%9F%98%80"),
    _case("/products/a%2Fb"),
    _case("/products/a%7Eb~c"),
    _case("/products/a:b@c!$&'()*+,;="),
    _case("/products/../index"),
    _case("/a/b/../../products"),
    _case("/../products"),
    _case("/products/./x/."),
    _case("/products/x/.."),
    _case("/products/x/../"),
    _case("//products"),
    _case("/products//x///"),
    _case("/products/.hidden/..."),
    # queries
    _case("/products?limit=5"),
    _case("/products?z=1&y=2&x=3"),
    _case("/products?tag=b&tag=a&tag=c"),
    _case("/products?tag=1&tag=1"),
    _case("/products?b=&a="),
    _case("/products?flag"),
    _case("/products?flag&other=1"),
    _case("/products?note=a%20b"),
    _case("/products?note=caf%C3%A9"),
    _case("/products?note=%2F%3F%26%3D%2B%23%25"),
    _case("/products?note=-_.~"),
    _case("/products?a%20b=c"),
    _case("/products?%E6%97%A5=%E6%9C%AC"),
    _case("/products?A=1&a=2&_=3&-=4&a_b=5&a-b=6"),
    _case("/products?limit=5&cursor=eyJpZCI6IjAxOTBiNWM0In0"),
    _case("/products?nul=%00&tab=%09"),
    # headers
    _case("/products", headers=[("X-Custom", "a   b    c")]),
    _case("/products", headers=[("X-Custom", "   padded   ")]),
    _case("/products", headers=[("X-Custom", "tab\tand  spaces")]),
    _case("/products", headers=[("X-Multi", "one"), ("X-Multi", "  two  2 ")]),
    _case("/products", headers=[("X-MiXeD-CaSe", "Value")]),
    _case("/products", headers=[("X-Empty", "")]),
    _case("/products", headers=[("X-Latin", "café")]),
    _case("/products", headers=[("Content-Type", "application/json; charset=utf-8")]),
    _case("/products", headers=[("User-Agent", "not signed by botocore")]),
    # bodies and methods
    _case("/products", body=b'{"name": "Widget"}'),
    _case("/products", body=bytes(range(256))),
    _case(
        "/products",
        body=b"payload",
        headers=[("X-Amz-Content-SHA256", hashlib.sha256(b"payload").hexdigest())],
    ),
    _case("/products/x?dry_run=1", method="POST", body=b"{}"),
    _case("/products/x", method="DELETE"),
]

# botocore moves a body into the query of a presigned URL: those are for requests without one.
PRESIGNABLE = [param for param in CASES if not param.values[0].body]


def _botocore_request(case: Case) -> AWSRequest:
    request = AWSRequest(method=case.method, url=f"https://{HOST}{case.target}", data=case.body)
    for name, value in case.headers:
        request.headers[name] = value  # another value for a name already there is added
    return request


def _as_received(request: AWSRequest, body: bytes) -> SignedRequest:
    """What the server sees of the request botocore signed and would send."""
    url = urlsplit(str(request.url))
    headers = [("host", HOST), *request.headers.items()]
    return SignedRequest(str(request.method), url.path, url.query, headers, body)


def signed_with_headers(case: Case) -> tuple[SignedRequest, str]:
    request = _botocore_request(case)
    signer = RecordingSigV4Auth(KEY, SERVICE, REGION)
    signer.add_auth(request)
    return _as_received(request, case.body), signer.canonical


def presigned(case: Case, *, expires: int = 300) -> tuple[SignedRequest, str]:
    request = _botocore_request(case)
    signer = RecordingSigV4QueryAuth(KEY, SERVICE, REGION, expires=expires)
    signer.add_auth(request)
    return _as_received(request, case.body), signer.canonical


def _canonical(request: SignedRequest) -> str:
    signature = sigv4.read_signature(request)
    return sigv4.canonical_request(request, signature, hashlib.sha256(request.body).hexdigest())


def _verify(request: SignedRequest, *, secret: str = KEY.secret_key, now: datetime = NOW) -> None:
    sigv4.verify(request, sigv4.read_signature(request), secret, region=REGION, now=now)


# --- agreement with botocore -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_canonical_request_is_botocores(case: Case) -> None:
    request, botocore_canonical = signed_with_headers(case)
    assert _canonical(request) == botocore_canonical


@pytest.mark.parametrize("case", CASES)
def test_verify_accepts_botocores_signature(case: Case) -> None:
    request, _ = signed_with_headers(case)
    _verify(request)


@pytest.mark.parametrize("case", PRESIGNABLE)
def test_presigned_canonical_request_is_botocores(case: Case) -> None:
    request, botocore_canonical = presigned(case)
    assert _canonical(request) == botocore_canonical


@pytest.mark.parametrize("case", PRESIGNABLE)
def test_verify_accepts_botocores_presigned_url(case: Case) -> None:
    request, _ = presigned(case)
    _verify(request)


def test_read_signature_reads_what_botocore_wrote() -> None:
    request, _ = signed_with_headers(Case("/products", headers=[("X-Custom", "1")]))
    signature = sigv4.read_signature(request)
    assert signature.access_key_id == KEY.access_key
    assert signature.timestamp == STAMP
    assert signature.scope == f"20261121/{REGION}/{SERVICE}/aws4_request"
    assert signature.signed_headers == ("host", "x-amz-date", "x-custom")
    assert signature.expires is None


def test_read_signature_reads_a_presigned_url() -> None:
    request, _ = presigned(Case("/products?limit=5"), expires=60)
    signature = sigv4.read_signature(request)
    assert (signature.access_key_id, signature.timestamp) == (KEY.access_key, STAMP)
    assert signature.signed_headers == ("host",)
    assert signature.expires == 60


def test_a_query_byte_that_is_not_utf8_is_canonical_as_that_byte() -> None:
    # SigV4 encodes bytes: %FF stays %FF, not U+FFFD's %EF%BF%BD.
    request, botocore_canonical = signed_with_headers(Case("/products?x=%FF"))
    assert _canonical(request) == botocore_canonical


def test_a_signature_for_one_query_byte_does_not_verify_another() -> None:
    request, _ = signed_with_headers(Case("/products?x=%EF%BF%BD"))
    for forged in ("x=%FF", "x=%FE"):
        with pytest.raises(SignatureRejected):
            _verify(replace(request, query=forged))


# --- what nimbus normalises as AWS does --------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("x=%7e", "x=~"),
        ("x=%7E", "x=~"),
        ("x=~", "x=~"),
        ("x=%c3%a9", "x=%C3%A9"),
        ("x=a:b/c", "x=a%3Ab%2Fc"),
        ("x=a+b", "x=a%2Bb"),  # a plus is a plus, not a space
        ("b=2&a=1", "a=1&b=2"),
        ("x", "x="),
        ("&&x=1&&", "x=1"),
    ],
)
def test_canonical_query_reencodes_each_name_and_value(query: str, canonical: str) -> None:
    assert sigv4.canonical_query(query) == canonical


def test_presigned_canonical_query_leaves_out_only_the_signature() -> None:
    query = f"X-Amz-Signature={HEX}&limit=5&X-Amz-Date={STAMP}"
    assert sigv4.canonical_query(query, presigned=True) == f"X-Amz-Date={STAMP}&limit=5"
    assert sigv4.canonical_query(query) == f"X-Amz-Date={STAMP}&X-Amz-Signature={HEX}&limit=5"


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a/../..", "/"),
        ("/a/./b/../c/", "/a/c/"),
        ("//a//b", "/a/b"),
        ("/a%20b", "/a%2520b"),
        ("/caf%C3%A9", "/caf%25C3%25A9"),
    ],
)
def test_canonical_path_removes_dot_and_empty_segments_and_encodes_again(
    path: str, canonical: str
) -> None:
    assert sigv4.canonical_path(path) == canonical


# --- verify rejects what does not match --------------------------------------------------------


def _signed(case: Case = Case("/products?limit=5", headers=[("X-Custom", "1")])) -> SignedRequest:
    return signed_with_headers(case)[0]


def _rejected_code(
    request: SignedRequest, *, secret: str = KEY.secret_key, now: datetime = NOW
) -> str:
    with pytest.raises(SignatureRejected) as caught:
        _verify(request, secret=secret, now=now)
    return caught.value.code


def test_verify_rejects_a_wrong_secret() -> None:
    assert _rejected_code(_signed(), secret="not the secret") == "signature_mismatch"


@pytest.mark.parametrize(
    "change",
    [
        {"method": "DELETE"},
        {"path": "/products/"},
        {"path": "/Products"},
        {"query": "limit=6"},
        {"query": "limit=5&limit=5"},
        {"body": b"x"},
    ],
    ids=repr,
)
def test_verify_rejects_a_changed_request(change: dict[str, object]) -> None:
    request = replace(_signed(), **change)  # type: ignore[arg-type]
    assert _rejected_code(request) == "signature_mismatch"


def test_verify_rejects_a_changed_signed_header() -> None:
    request = _signed()
    headers = [(k, "2" if k == "X-Custom" else v) for k, v in request.headers]
    assert _rejected_code(replace(request, headers=headers)) == "signature_mismatch"


def test_verify_rejects_a_signed_header_sent_twice() -> None:
    request = _signed()
    headers = [*request.headers, ("x-custom", "1")]
    assert _rejected_code(replace(request, headers=headers)) == "signature_mismatch"


def test_verify_rejects_a_signed_header_left_out() -> None:
    request = _signed()
    headers = [(k, v) for k, v in request.headers if k != "X-Custom"]
    assert _rejected_code(replace(request, headers=headers)) == "incomplete_signature"


def test_verify_ignores_an_unsigned_header() -> None:
    request = _signed()
    _verify(replace(request, headers=[*request.headers, ("X-Forwarded-For", "10.0.0.1")]))


def test_verify_rejects_a_content_sha256_that_is_not_the_bodys() -> None:
    declared = hashlib.sha256(b"other").hexdigest()
    request = _signed(Case("/products", body=b"mine", headers=[("X-Amz-Content-SHA256", declared)]))
    assert _rejected_code(request) == "signature_mismatch"


def test_verify_needs_the_host_header_signed() -> None:
    signature = replace(sigv4.read_signature(_signed()), signed_headers=("x-amz-date", "x-custom"))
    with pytest.raises(SignatureRejected) as caught:
        sigv4.verify(_signed(), signature, KEY.secret_key, region=REGION, now=NOW)
    assert caught.value.code == "incomplete_signature"


@pytest.mark.parametrize(
    ("offset", "code"),
    [
        (timedelta(minutes=5, seconds=1), "signature_expired"),
        (-timedelta(minutes=5, seconds=1), "signature_not_yet_current"),
    ],
)
def test_verify_allows_five_minutes_of_clock_skew_and_no_more(offset: timedelta, code: str) -> None:
    request = _signed()
    _verify(request, now=NOW + timedelta(minutes=5))
    _verify(request, now=NOW - timedelta(minutes=5))
    assert _rejected_code(request, now=NOW + offset) == code


def test_a_presigned_url_is_good_until_it_expires() -> None:
    request, _ = presigned(Case("/products"), expires=600)
    _verify(request, now=NOW + timedelta(seconds=600))
    assert _rejected_code(request, now=NOW + timedelta(seconds=601)) == "signature_expired"


@pytest.mark.parametrize(
    ("region", "service"), [("eu-west-1", SERVICE), (REGION, "s3"), (REGION, "execute-API")]
)
def test_verify_rejects_another_credential_scope(region: str, service: str) -> None:
    request = signed_with_headers_for(region, service)
    with pytest.raises(SignatureRejected) as caught:
        _verify(request)
    assert caught.value.code == "invalid_credential_scope"


def signed_with_headers_for(region: str, service: str) -> SignedRequest:
    request = AWSRequest(method="GET", url=f"https://{HOST}/products")
    SigV4Auth(KEY, service, region).add_auth(request)
    return _as_received(request, b"")


# --- read_signature: malformed signatures ------------------------------------------------------


def _with_authorization(authorization: str, *, date: str | None = STAMP) -> SignedRequest:
    headers = [("host", HOST), ("authorization", authorization)]
    if date is not None:
        headers.append(("x-amz-date", date))
    return SignedRequest("GET", "/products", "", headers, b"")


def _read_code(request: SignedRequest) -> str:
    with pytest.raises(SignatureRejected) as caught:
        sigv4.read_signature(request)
    return caught.value.code


def test_no_signature_at_all_is_missing_authentication_token() -> None:
    request = SignedRequest("GET", "/products", "limit=5", [("host", HOST)], b"")
    with pytest.raises(SignatureRejected) as caught:
        sigv4.read_signature(request)
    assert (caught.value.message, caught.value.code) == (
        "Missing Authentication Token",
        "missing_authentication_token",
    )


_GOOD = f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host;x-amz-date, Signature={HEX}"


def test_a_well_formed_authorization_header_reads() -> None:
    assert sigv4.read_signature(_with_authorization(_GOOD)).signature == HEX


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 junk",
        "AWS4-HMAC-SHA256 ,,",
        "aws4-hmac-sha256 " + _GOOD.partition(" ")[2],
        "AWS4-HMAC-SHA1 " + _GOOD.partition(" ")[2],
        _GOOD.replace(", SignedHeaders=host;x-amz-date", ""),
        _GOOD.replace(f"Credential={CREDENTIAL}, ", ""),
        _GOOD.replace(f", Signature={HEX}", ""),
        _GOOD + f", Signature={HEX}",
        _GOOD.replace("Credential=", "Credential"),
        _GOOD.replace(CREDENTIAL, "NIMBAAAAAAAAAAAAAAAA/20261121/us-east-1/execute-api"),
        _GOOD.replace(CREDENTIAL, "NIMBAAAAAAAAAAAAAAAA/20261121//execute-api/aws4_request"),
        _GOOD.replace(CREDENTIAL, CREDENTIAL + "/extra"),
        _GOOD.replace("host;x-amz-date", "x-amz-date;host"),
        _GOOD.replace("host;x-amz-date", "Host;x-amz-date"),
        _GOOD.replace("host;x-amz-date", "host;host;x-amz-date"),
        _GOOD.replace("host;x-amz-date", "host;;x-amz-date"),
        _GOOD.replace("host;x-amz-date", ""),
        _GOOD.replace(HEX, HEX.upper()),
        _GOOD.replace(HEX, HEX[:-1]),
        _GOOD.replace(HEX, HEX + "0"),
        _GOOD.replace(HEX, "g" * 64),
    ],
)
def test_a_malformed_authorization_header_is_incomplete_signature(authorization: str) -> None:
    assert _read_code(_with_authorization(authorization)) in {
        "incomplete_signature",
        "missing_authentication_token",  # the empty header
    }


def test_a_header_signature_needs_x_amz_date() -> None:
    assert _read_code(_with_authorization(_GOOD, date=None)) == "incomplete_signature"


def test_a_header_signature_needs_exactly_one_x_amz_date() -> None:
    request = _with_authorization(_GOOD)
    twice = replace(request, headers=[*request.headers, ("X-Amz-Date", STAMP)])
    assert _read_code(twice) == "incomplete_signature"


def test_two_authorization_headers_are_incomplete_signature() -> None:
    request = _with_authorization(_GOOD)
    twice = replace(request, headers=[*request.headers, ("Authorization", _GOOD)])
    assert _read_code(twice) == "incomplete_signature"


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-11-21T10:15:00Z", "20261321T101500Z"])
def test_an_unreadable_timestamp_is_incomplete_signature(timestamp: str) -> None:
    signature = sigv4.read_signature(_with_authorization(_GOOD, date=timestamp))
    with pytest.raises(SignatureRejected) as caught:
        sigv4.check_scope(signature, region=REGION, service=SERVICE, now=NOW)
    assert caught.value.code == "incomplete_signature"


def test_a_scope_date_other_than_the_timestamps_is_invalid_credential_scope() -> None:
    authorization = _GOOD.replace("/20261121/", "/20261120/")
    signature = sigv4.read_signature(_with_authorization(authorization))
    with pytest.raises(SignatureRejected) as caught:
        sigv4.check_scope(signature, region=REGION, service=SERVICE, now=NOW)
    assert caught.value.code == "invalid_credential_scope"


def test_a_wrong_terminator_is_invalid_credential_scope() -> None:
    authorization = _GOOD.replace("aws4_request", "aws5_request")
    signature = sigv4.read_signature(_with_authorization(authorization))
    with pytest.raises(SignatureRejected) as caught:
        sigv4.check_scope(signature, region=REGION, service=SERVICE, now=NOW)
    assert caught.value.code == "invalid_credential_scope"


_PRESIGNED = {
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": CREDENTIAL.replace("/", "%2F"),
    "X-Amz-Date": STAMP,
    "X-Amz-Expires": "60",
    "X-Amz-SignedHeaders": "host",
    "X-Amz-Signature": HEX,
}


def _presigned_query(**changes: str | None) -> SignedRequest:
    params = {**_PRESIGNED, **changes}
    query = "&".join(f"{name}={value}" for name, value in params.items() if value is not None)
    return SignedRequest("GET", "/products", query, [("host", HOST)], b"")


def test_a_well_formed_presigned_query_reads() -> None:
    signature = sigv4.read_signature(_presigned_query())
    assert (signature.access_key_id, signature.expires) == (KEY.access_key, 60)


@pytest.mark.parametrize(
    "changes",
    [
        {"X-Amz-Algorithm": None},
        {"X-Amz-Credential": None},
        {"X-Amz-Date": None},
        {"X-Amz-Expires": None},
        {"X-Amz-SignedHeaders": None},
        {"X-Amz-Signature": None},
        {"X-Amz-Algorithm": "AWS4-HMAC-SHA1"},
        {"X-Amz-Credential": "NIMBAAAAAAAAAAAAAAAA"},
        {"X-Amz-Expires": "0"},
        {"X-Amz-Expires": "604801"},
        {"X-Amz-Expires": "-1"},
        {"X-Amz-Expires": "1e3"},
        {"X-Amz-Expires": ""},
        {"X-Amz-Expires": "9" * 5000},  # past int()'s digit limit
        {"X-Amz-Expires": "%C2%B2"},  # "²": str.isdigit() says yes, int() says no
        {"X-Amz-SignedHeaders": "x-amz-date%3BHost"},
        {"X-Amz-Signature": "xyz"},
    ],
    ids=repr,
)
def test_a_malformed_presigned_query_is_incomplete_signature(
    changes: dict[str, str | None],
) -> None:
    assert _read_code(_presigned_query(**changes)) == "incomplete_signature"


def test_a_presigned_parameter_given_twice_is_incomplete_signature() -> None:
    request = _presigned_query()
    twice = replace(request, query=request.query + f"&X-Amz-Signature={HEX}")
    assert _read_code(twice) == "incomplete_signature"


def test_a_presigned_url_dated_at_the_end_of_time_is_rejected_not_an_overflow() -> None:
    signature = sigv4.read_signature(
        _presigned_query(**{"X-Amz-Date": "99991231T235959Z", "X-Amz-Expires": "604800"})
    )
    with pytest.raises(SignatureRejected):
        sigv4.check_scope(signature, region=REGION, service=SERVICE, now=NOW)
