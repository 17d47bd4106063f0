"""HS256 JWTs verified with the standard library alone, answering as PyJWT's `jwt.decode` does.

Verifying an access token is the one JWT operation on the path of every request, and PyJWT
imports cryptography (its x509 and key loaders) as it loads, tens of milliseconds of a Lambda
cold start. This module verifies what nimbus verifies with PyJWT, HS256 under one key with an
issuer, an audience and required claims, and accepts exactly the tokens PyJWT accepts
(tests/unit/test_hs256.py compares the two over many tokens), checked per RFC 8725: the
algorithm is pinned (`alg` must be HS256, so `none` and asymmetric algorithms fail before any
signature is computed), critical headers must be ones understood, every segment must be
canonical base64url, and the claims are checked as PyJWT checks them. Signing, and every other
algorithm, stay with PyJWT.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from nimbus.values import frozen

ALGORITHM = "HS256"
_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SUPPORTED_CRIT = frozenset({"b64"})
MIN_KEY_BYTES = 32


class InvalidToken(Exception):
    """The token is malformed, its signature or a claim does not check out, or the key is
    unusable: where PyJWT raises a PyJWTError."""


@frozen
class Parsed:
    """A token split and decoded, nothing in it verified yet."""

    header: dict[str, Any]
    payload: bytes
    signing_input: bytes
    signature: bytes


def parse(token: str | bytes) -> Parsed:
    """The token's parts, with its header checked as PyJWT's `get_unverified_header` checks
    it; InvalidToken where that raises."""
    if isinstance(token, str):
        token = token.encode("utf-8")
    if not isinstance(token, bytes):
        raise InvalidToken("a token is text")
    try:
        signing_input, crypto_segment = token.rsplit(b".", 1)
        header_segment, payload_segment = signing_input.split(b".", 1)
    except ValueError:
        raise InvalidToken("not enough segments") from None
    header_data = _segment(header_segment)
    try:
        header = json.loads(header_data)
    except (ValueError, RecursionError):
        raise InvalidToken("the header is no JSON") from None
    if not isinstance(header, dict):
        raise InvalidToken("the header is no JSON object")
    if header.get("b64", True) is False:
        # A detached payload (RFC 7797), which no nimbus token has: verify refuses it.
        if payload_segment:
            raise InvalidToken("a detached payload's segment is empty")
        payload = b""
    else:
        payload = _segment(payload_segment)
    signature = _segment(crypto_segment)
    _check_header(header)
    return Parsed(header, payload, signing_input, signature)


def verify(
    parsed: Parsed,
    key: bytes,
    *,
    issuer: str,
    audience: str,
    leeway: float,
    require: Sequence[str],
) -> dict[str, Any]:
    """The token's claims once its signature under `key` and its claims check out, as
    `jwt.decode(token, key, algorithms=["HS256"], issuer=issuer, audience=audience,
    leeway=leeway, options={"require": require})` returns them; InvalidToken where it raises."""
    header = parsed.header
    if header.get("b64", True) is False:
        raise InvalidToken("a detached payload is not verified here")
    if "alg" not in header:
        raise InvalidToken("no algorithm")
    alg = header["alg"]
    if not alg or alg != ALGORITHM:
        raise InvalidToken("the algorithm is not allowed")
    _check_key(key)
    expected = hmac.new(key, parsed.signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(parsed.signature, expected):
        raise InvalidToken("the signature does not verify")
    try:
        claims = json.loads(parsed.payload)
    except (ValueError, RecursionError):
        raise InvalidToken("the payload is no JSON") from None
    if not isinstance(claims, dict):
        raise InvalidToken("the payload is no JSON object")
    _check_claims(claims, issuer=issuer, audience=audience, leeway=leeway, require=require)
    return claims


def _segment(segment: bytes) -> bytes:
    """A segment's bytes; it must be canonical base64url, trailing `=` allowed (PyJWT's
    rules, against GHSA-hxm8-2xgr-2p9m)."""
    stripped = segment.rstrip(b"=")
    padding = len(segment) - len(stripped)
    if padding > 2 or (padding and len(segment) % 4 != 0):
        raise InvalidToken("bad padding")
    if len(stripped) % 4 == 1 or not _ALPHABET.issuperset(stripped):
        raise InvalidToken("not base64url")
    try:
        decoded = base64.urlsafe_b64decode(stripped + b"=" * (-len(stripped) % 4))
    except (TypeError, binascii.Error):
        raise InvalidToken("not base64url") from None
    if base64.urlsafe_b64encode(decoded).replace(b"=", b"") != stripped:
        raise InvalidToken("not canonical base64url")
    return decoded


def _check_header(header: dict[str, Any]) -> None:
    if "kid" in header and not isinstance(header["kid"], str):
        raise InvalidToken("kid is text")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise InvalidToken("crit is a list")
        for extension in crit:
            if not isinstance(extension, str) or extension not in _SUPPORTED_CRIT:
                raise InvalidToken("an unsupported critical extension")
            if extension not in header:
                raise InvalidToken("a critical extension is missing")


def _check_claims(
    claims: dict[str, Any], *, issuer: str, audience: str, leeway: float, require: Sequence[str]
) -> None:
    for claim in require:
        if claims.get(claim) is None:
            raise InvalidToken(f"{claim} is required")
    now = time.time()
    if "iat" in claims and _integer(claims["iat"]) > now + leeway:
        raise InvalidToken("issued in the future")
    if "nbf" in claims and _integer(claims["nbf"]) > now + leeway:
        raise InvalidToken("not yet valid")
    if "exp" in claims and _integer(claims["exp"]) <= now - leeway:
        raise InvalidToken("expired")
    if "iss" not in claims or not isinstance(claims["iss"], str) or claims["iss"] != issuer:
        raise InvalidToken("another issuer")
    audiences = claims.get("aud")
    if not audiences:
        raise InvalidToken("no audience")
    if isinstance(audiences, str):
        audiences = [audiences]
    if not isinstance(audiences, list) or any(not isinstance(a, str) for a in audiences):
        raise InvalidToken("aud is text or a list of text")
    if audience not in audiences:
        raise InvalidToken("another audience")
    if "sub" in claims and not isinstance(claims["sub"], str):
        raise InvalidToken("sub is text")
    if "jti" in claims and not isinstance(claims["jti"], str):
        raise InvalidToken("jti is text")


def _integer(value: Any) -> int:
    # int() as PyJWT applies it: "123" and 1.5 pass, as they do there.
    try:
        return int(value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidToken("a time is no integer") from None


def _check_key(key: bytes) -> None:
    # RFC 7518 section 3.2: a key at least as long as the hash. nimbus's keys are 32 random
    # bytes, or the configured root key, which settings require to be longer.
    if len(key) < MIN_KEY_BYTES:
        raise InvalidToken("the key is shorter than 256 bits")
