"""TOTP (RFC 6238): the codes an authenticator app shows, from a secret shared at enrolment.

HMAC-SHA-1, six digits, 30-second steps: the parameters every authenticator app honours
(several ignore the URI's others). A code is accepted one step either side of now, for clock
drift and a code typed as it changed; the caller refuses a step at or before the last one
accepted, so no code works twice.
"""

import base64
import hmac
import secrets
from urllib.parse import quote, urlencode

SECRET_BYTES = 20  # 160 bits: RFC 4226's recommended length
DIGITS = 6
PERIOD = 30  # seconds per step
DRIFT = 1  # steps accepted either side of now


def new_secret() -> str:
    """A random secret, in the unpadded base32 an authenticator app takes."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def step_at(timestamp: float) -> int:
    return int(timestamp // PERIOD)


def code_at(secret: str, step: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """The code of `step` (RFC 4226's HOTP of the step counter)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    mac = hmac.digest(key, step.to_bytes(8, "big"), digest)
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def matching_step(secret: str, code: str, timestamp: float, *, after: int) -> int | None:
    """The step within the drift of `timestamp`, later than `after`, whose code `code` is;
    None if there is none. Every candidate is compared, in constant time."""
    now = step_at(timestamp)
    found = None
    for step in range(now - DRIFT, now + DRIFT + 1):
        if hmac.compare_digest(code_at(secret, step), code) and step > after and found is None:
            found = step
    return found


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The otpauth:// URI an authenticator app reads (from a QR code, or pasted)."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def qr_svg(uri: str) -> str:
    """The URI as a QR code: a standalone SVG document, with no external references."""
    import io

    import segno  # only an enrolment draws one

    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, scale=4, border=2)
    return out.getvalue().decode()


def is_code(typed: str) -> bool:
    """Whether `typed` has a TOTP code's form (a recovery code has another)."""
    return len(typed) == DIGITS and typed.isascii() and typed.isdigit()
