"""AWS Signature Version 4, verified on the server: what API Gateway's IAM authorization does,
for the service credentials nimbus issues; and made on the client, for nimbus's own AWS calls.

The rules are AWS's for every service but S3: the path is normalised and each segment encoded
twice, the query re-encoded and sorted, header values trimmed, the body hashed with SHA-256.
A signature travels in the Authorization header or, for a presigned URL, in the query.
"""

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, unquote_to_bytes

from nimbus.domain.errors import SignatureRejected
from nimbus.values import frozen

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
TERMINATOR = "aws4_request"
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_PRESIGNED_EXPIRY = 7 * 24 * 3600
_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_QUERY_AUTH = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature")


MISSING_TOKEN = "Missing Authentication Token"


@frozen
class SignedRequest:
    """A request as it arrived: the path and query exactly as sent (still percent-encoded)."""

    method: str
    path: str
    query: str
    headers: Sequence[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name]


@frozen
class Signature:
    """What a request claims about its own signature, before any of it is believed."""

    access_key_id: str
    timestamp: str  # 20261121T101500Z
    scope_date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str
    expires: int | None  # presigned URLs only

    @property
    def scope(self) -> str:
        return f"{self.scope_date}/{self.region}/{self.service}/{self.terminator}"


def read_signature(request: SignedRequest) -> Signature:
    """The signature a request carries; SignatureRejected if it carries none or a malformed one."""
    params = _query_pairs(request.query)
    if any(name in _QUERY_AUTH for name, _ in params):
        return _from_query(params)
    authorization = request.header("authorization")
    if not authorization:
        raise SignatureRejected(MISSING_TOKEN, code="missing_authentication_token")
    if len(authorization) > 1:
        raise _incomplete("Only one Authorization header may be sent")
    return _from_header(authorization[0], request)


def verify(
    request: SignedRequest,
    signature: Signature,
    secret: str,
    *,
    region: str,
    now: datetime,
    service: str = SERVICE,
) -> None:
    """Return if `secret` made this signature for this request, now; SignatureRejected if not."""
    check_scope(signature, region=region, service=service, now=now)
    if "host" not in signature.signed_headers:
        raise _incomplete("The host header must be signed")
    payload = _payload_hash(request)
    canonical = canonical_request(request, signature, payload)
    expected = sign(secret, signature, canonical)
    if not hmac.compare_digest(expected, signature.signature):
        raise SignatureRejected(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
            code="signature_mismatch",
        )


def check_scope(signature: Signature, *, region: str, service: str, now: datetime) -> None:
    """The checks that need no secret: the time, the credential scope."""
    try:
        signed_at = datetime.strptime(signature.timestamp, _DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        # The client's own value refused in one line; the parse error adds nothing to it.
        raise _incomplete(
            f"Invalid X-Amz-Date {signature.timestamp!r}: use YYYYMMDD'T'HHMMSS'Z'"
        ) from None
    stamp = now.strftime(_DATE_FORMAT)
    if signature.expires is not None:
        if now - signed_at > timedelta(seconds=signature.expires):
            raise SignatureRejected(
                f"Request has expired: signed at {signature.timestamp}, valid for "
                f"{signature.expires} seconds, now {stamp}",
                code="signature_expired",
            )
    elif signed_at < now - MAX_CLOCK_SKEW:
        earliest = (now - MAX_CLOCK_SKEW).strftime(_DATE_FORMAT)
        raise SignatureRejected(
            f"Signature expired: {signature.timestamp} is now earlier than {earliest} "
            f"({stamp} - 5 min.)",
            code="signature_expired",
        )
    if signed_at > now + MAX_CLOCK_SKEW:
        latest = (now + MAX_CLOCK_SKEW).strftime(_DATE_FORMAT)
        raise SignatureRejected(
            f"Signature not yet current: {signature.timestamp} is still later than {latest} "
            f"({stamp} + 5 min.)",
            code="signature_not_yet_current",
        )
    if signature.scope_date != signature.timestamp[:8]:
        raise _scope(
            f"Date in Credential scope does not match YYYYMMDD from X-Amz-Date: "
            f"{signature.scope_date!r} != {signature.timestamp[:8]!r}"
        )
    if signature.region != region:
        raise _scope(f"Credential should be scoped to a valid region: {region!r}")
    if signature.service != service:
        raise _scope(f"Credential should be scoped to correct service: {service!r}")
    if signature.terminator != TERMINATOR:
        raise _scope(f"Credential should be scoped with a valid terminator: {TERMINATOR!r}")


def canonical_request(request: SignedRequest, signature: Signature, payload_hash: str) -> str:
    headers = []
    for name in signature.signed_headers:
        values = request.header(name)
        if not values:
            raise _incomplete(f"The signed header {name!r} is missing from the request")
        headers.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}\n")
    return "\n".join(
        [
            request.method.upper(),
            canonical_path(request.path),
            canonical_query(request.query, presigned=signature.expires is not None),
            "".join(headers),
            ";".join(signature.signed_headers),
            payload_hash,
        ]
    )


def canonical_path(path: str) -> str:
    """Dot segments and empty segments removed, then every segment encoded (again)."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    trailing = "/" if path.endswith("/") and segments else ""
    return quote("/" + "/".join(segments) + trailing, safe="/~")


def canonical_query(query: str, *, presigned: bool = False) -> str:
    pairs = [
        # Bytes, not text: SigV4 encodes each byte, whatever the encoding.
        (_encode(unquote_to_bytes(name)), _encode(unquote_to_bytes(value)))
        for name, value in _query_pairs(query)
        if not (presigned and name == "X-Amz-Signature")
    ]
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def sign(secret: str, signature: Signature, canonical: str) -> str:
    string_to_sign = "\n".join(
        [
            ALGORITHM,
            signature.timestamp,
            signature.scope,
            hashlib.sha256(canonical.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (signature.scope_date, signature.region, signature.service, signature.terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    request: SignedRequest,
    *,
    access_key_id: str,
    secret: str,
    region: str,
    service: str,
    timestamp: str,
) -> str:
    """The client's side: the Authorization header that signs every header of `request`
    (which must carry `host` and an `x-amz-date` of `timestamp`)."""
    names = tuple(sorted({name.lower() for name, _ in request.headers}))
    signature = Signature(
        access_key_id, timestamp, timestamp[:8], region, service, TERMINATOR, names, "", None
    )
    canonical = canonical_request(request, signature, hashlib.sha256(request.body).hexdigest())
    return (
        f"{ALGORITHM} Credential={access_key_id}/{signature.scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={sign(secret, signature, canonical)}"
    )


def _payload_hash(request: SignedRequest) -> str:
    # Presigned URLs too: outside S3, botocore signs the body's hash in them as well.
    declared = request.header("x-amz-content-sha256")
    actual = hashlib.sha256(request.body).hexdigest()
    if declared and declared[0] != actual:
        raise SignatureRejected(
            "The x-amz-content-sha256 header does not match the SHA-256 of the body",
            code="signature_mismatch",
        )
    return actual


def _request_time(request: SignedRequest) -> str:
    """X-Amz-Date, or failing that a Date header (botocore signs with Date when a request
    already has one), as the basic ISO 8601 form the string to sign holds."""
    amz_dates, dates = request.header("x-amz-date"), request.header("date")
    if len(amz_dates) == 1:
        return amz_dates[0]
    if not amz_dates and len(dates) == 1:
        try:
            when = parsedate_to_datetime(dates[0])
        except (TypeError, ValueError):
            # As for X-Amz-Date: the refusal says all the parse error would.
            raise _incomplete(f"Invalid Date header {dates[0][:40]!r}") from None
        if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
            when = when.replace(tzinfo=UTC)
        try:
            return when.astimezone(UTC).strftime(_DATE_FORMAT)
        except OverflowError:  # year 9999 with a negative offset, refused as above
            raise _incomplete(f"Invalid Date header {dates[0][:40]!r}") from None
    raise _incomplete("A signed request needs exactly one X-Amz-Date or Date header")


def _from_header(authorization: str, request: SignedRequest) -> Signature:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"The Authorization header must be an {ALGORITHM} signature")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, value = part.strip().partition("=")
        if not equals or name in fields:
            raise _incomplete(f"Malformed Authorization header near {part.strip()[:40]!r}")
        fields[name] = value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        raise _incomplete(f"Authorization header requires the {', '.join(missing)} parameter")
    return _signature(
        fields["Credential"],
        fields["SignedHeaders"],
        fields["Signature"],
        _request_time(request),
        None,
    )


def _from_query(pairs: list[tuple[str, str]]) -> Signature:
    params: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("X-Amz-"):
            if name in params:
                raise _incomplete(f"Query parameter {name} appears more than once")
            params[name] = unquote(value)
    needed = (*_QUERY_AUTH, "X-Amz-Date", "X-Amz-Expires")
    missing = [name for name in needed if name not in params]
    if missing:
        raise _incomplete(f"A presigned URL requires the {', '.join(missing)} parameter")
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _incomplete(f"X-Amz-Algorithm must be {ALGORITHM}")
    expires = params["X-Amz-Expires"]
    # Length first: int() refuses thousands of digits, and nothing valid has more than six.
    if not (len(expires) <= 6 and expires.isascii() and expires.isdigit()) or not (
        1 <= int(expires) <= MAX_PRESIGNED_EXPIRY
    ):
        raise _incomplete(f"X-Amz-Expires must be 1 to {MAX_PRESIGNED_EXPIRY} seconds")
    return _signature(
        params["X-Amz-Credential"],
        params["X-Amz-SignedHeaders"],
        params["X-Amz-Signature"],
        params["X-Amz-Date"],
        int(expires),
    )


def _signature(
    credential: str, signed_headers: str, signature: str, timestamp: str, expires: int | None
) -> Signature:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise _incomplete("Credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request")
    headers = tuple(signed_headers.split(";"))
    if not all(headers) or list(headers) != sorted({h.lower() for h in headers}):
        raise _incomplete("SignedHeaders must be lower-case names, sorted, each once")
    if len(signature) != 64 or any(c not in "0123456789abcdef" for c in signature):
        raise _incomplete("Signature must be 64 lower-case hexadecimal digits")
    key, date, region, service, terminator = parts
    return Signature(key, timestamp, date, region, service, terminator, headers, signature, expires)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for pair in query.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            pairs.append((name, value))
    return pairs


def _encode(value: bytes) -> str:
    return quote(value, safe="-_.~")


def _incomplete(message: str) -> SignatureRejected:
    return SignatureRejected(message, code="incomplete_signature")


def _scope(message: str) -> SignatureRejected:
    return SignatureRejected(message, code="invalid_credential_scope")
