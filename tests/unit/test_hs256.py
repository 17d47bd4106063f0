"""nimbus.security.hs256 against PyJWT: the same tokens accepted with the same claims, the same
refused, over tokens made well and badly in many ways."""

import base64
import hashlib
import hmac
import json
import random
import time
import warnings
from typing import Any

import jwt
import pytest

from nimbus.security import hs256

KEY = bytes(range(32))
ISSUER, AUDIENCE = "nimbus", "nimbus-api"
LEEWAY = 30.0
REQUIRE = ["sub", "iat", "nbf", "exp", "jti", "iss", "aud", "sid"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: Any, payload: Any, key: bytes = KEY, *, raw: bytes | None = None) -> str:
    """A token signed with HMAC-SHA256 whatever its header says; `raw` is the payload's bytes
    as they are, in place of `payload` as JSON."""
    body = raw if raw is not None else json.dumps(payload).encode()
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(body)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "u1",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": "j1",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sid": "s1",
        "username": "alice",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not _DROP}


_DROP = object()
HEADER = {"alg": "HS256", "typ": "at+jwt", "kid": "k1"}


def _pyjwt(token: str, key: bytes) -> tuple[str, Any]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                issuer=ISSUER,
                audience=AUDIENCE,
                leeway=LEEWAY,
                options={"require": REQUIRE},
            )
    except jwt.PyJWTError:
        return "refused", None
    return "accepted", (header, claims)


def _ours(token: str, key: bytes) -> tuple[str, Any]:
    try:
        parsed = hs256.parse(token)
        claims = hs256.verify(
            parsed, key, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY, require=REQUIRE
        )
    except hs256.InvalidToken:
        return "refused", None
    return "accepted", (parsed.header, claims)


def _same(token: str, key: bytes = KEY) -> str:
    ours, theirs = _ours(token, key), _pyjwt(token, key)
    assert ours == theirs, token
    return ours[0]


def test_a_good_token_is_accepted_with_its_claims() -> None:
    token = _token(HEADER, _claims())
    assert _same(token) == "accepted"
    assert _ours(token, KEY)[1] == (HEADER, _claims() | {"iat": _claims()["iat"]})


def test_alg_none_is_refused() -> None:
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}."
    unsigned += f"{_b64(json.dumps(_claims()).encode())}."
    assert _same(unsigned) == "refused"
    for alg in ["none", "None", "NONE", "", None, "HS512", "HS384", "ES256", "RS256", "EdDSA"]:
        assert _same(_token(HEADER | {"alg": alg}, _claims())) == "refused"
    header_without_alg = {"typ": "at+jwt", "kid": "k1"}
    assert _same(_token(header_without_alg, _claims())) == "refused"


def test_a_wrong_key_is_refused() -> None:
    token = _token(HEADER, _claims())
    assert _same(token, key=bytes(32)) == "refused"
    assert _same(token, key=KEY[:-1] + b"\x00") == "refused"
    assert _same(_token(HEADER, _claims(), key=b"k" * 32)) == "refused"


def test_a_forged_header_is_refused() -> None:
    good = _token(HEADER, _claims())
    signature = good.rsplit(".", 1)[1]
    _, payload, _ = good.split(".")
    for header in [
        HEADER | {"kid": "another"},
        HEADER | {"alg": "none"},
        HEADER | {"typ": "JWT"},
        {"alg": "HS256"},
    ]:
        forged = f"{_b64(json.dumps(header).encode())}.{payload}.{signature}"
        assert _same(forged) == "refused"


@pytest.mark.parametrize(
    "header",
    [
        HEADER | {"kid": 7},
        HEADER | {"kid": None},
        HEADER | {"kid": ["k1"]},
        HEADER | {"crit": []},
        HEADER | {"crit": "b64"},
        HEADER | {"crit": ["exp"]},
        HEADER | {"crit": ["b64"]},
        HEADER | {"crit": ["b64"], "b64": True},
        HEADER | {"crit": [1], "b64": True},
        HEADER | {"b64": False},
        HEADER | {"b64": False, "crit": ["b64"]},
        HEADER | {"b64": 0},
        HEADER | {"b64": True},
        HEADER | {"alg": ["HS256"]},
        HEADER | {"alg": {"HS256": 1}},
        HEADER | {"alg": 256},
        ["HS256"],
        "HS256",
        None,
        {},
    ],
)
def test_headers_are_judged_alike(header: Any) -> None:
    _same(_token(header, _claims()))
    _same(_token(header, None, raw=b""))


NOW = int(time.time())
VALUES: list[Any] = [
    _DROP,
    None,
    "",
    0,
    1,
    -1,
    True,
    False,
    1.5,
    NOW,
    NOW + 10,
    NOW + 29,
    NOW + 31,
    NOW + 900,
    NOW - 10,
    NOW - 29,
    NOW - 31,
    NOW - 900,
    str(NOW),
    str(NOW + 900),
    f" {NOW} ",
    float(NOW + 0.5),
    10**30,
    -(10**30),
    [NOW],
    {"t": NOW},
    "abc",
    ISSUER,
    AUDIENCE,
    [AUDIENCE],
    [AUDIENCE, "other"],
    ["other"],
    [AUDIENCE, 1],
    [],
    "other",
]


@pytest.mark.parametrize("claim", [*REQUIRE, "username"])
def test_each_claim_is_judged_alike_whatever_its_value(claim: str) -> None:
    outcomes = {_same(_token(HEADER, _claims(**{claim: value}))) for value in VALUES}
    # A claim JWT does not define is the caller's to check (AccessTokens.principal).
    assert outcomes == ({"accepted"} if claim == "username" else {"accepted", "refused"})


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400", "1e3", "-0"])
@pytest.mark.parametrize("claim", ["iat", "nbf", "exp"])
def test_times_json_alone_can_hold_are_judged_alike(claim: str, text: str) -> None:
    body = json.dumps(_claims(**{claim: "@"})).replace('"@"', text).encode()
    _same(_token(HEADER, None, raw=body))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"null",
        b"42",
        b'"text"',
        b"{",
        b"\xff\xfe{}",
        b"\xef\xbb\xbf" + json.dumps(_claims()).encode(),
        json.dumps(_claims()).encode("utf-16"),
        json.dumps(_claims()).encode("utf-32-le"),
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps(_claims()).encode() + b" ",
        json.dumps(_claims()).encode() + b"x",
    ],
)
def test_payloads_that_are_no_claims_are_judged_alike(raw: bytes) -> None:
    _same(_token(HEADER, None, raw=raw))


def test_segments_are_judged_alike_however_they_are_spelled() -> None:
    good = _token(HEADER, _claims())
    header, payload, signature = good.split(".")
    variants = [
        good + ".",
        good + ".x",
        f"{header}.{payload}",
        f"{header}..{signature}",
        f"..{signature}",
        "..",
        "",
        good.replace(".", "", 1),
        f"{header}=.{payload}.{signature}",
        f"{header}.{payload}.{signature}=",
        f"{header}.{payload}.{signature}==",
        f"{header}.{payload}.{signature}===",
        f"{header}.{payload}==.{signature}",
        f"{header}.{payload}.{signature}!",
        f"{header}.{payload}.!{signature}",
        f"{header}.{payload}.{signature[:-1]}",
        f"{header}.{payload}.{signature}A",
        f" {good}",
        f"{good} ",
        f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}",
        f"{header}.{payload} .{signature}",
        f"{header}.{payload}\n.{signature}",
        good.upper(),
    ]
    # A non-canonical last character: the same bytes with unused low bits set.
    for index, (ours, alphabet) in enumerate(
        [(signature, "AEIMQUYcgkosw048"), (header, "AQgw"), (payload, "AQgw")]
    ):
        if ours[-1] in alphabet:
            tweaked = ours[:-1] + chr(ord(ours[-1]) + 1)
            parts = [header, payload, signature]
            parts[[2, 0, 1][index]] = tweaked
            variants.append(".".join(parts))
    for variant in variants:
        _same(variant)


def test_many_random_corruptions_are_judged_alike() -> None:
    rng = random.Random(8725)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.+/! "
    bases = [_token(HEADER, _claims()), _token(HEADER | {"crit": ["b64"], "b64": True}, _claims())]
    outcomes: dict[str, int] = {}
    for _ in range(3000):
        token = list(rng.choice(bases))
        for _ in range(rng.randint(1, 3)):
            position = rng.randrange(len(token))
            action = rng.random()
            if action < 0.5:
                token[position] = rng.choice(alphabet)
            elif action < 0.75:
                del token[position]
            else:
                token.insert(position, rng.choice(alphabet))
        outcome = _same("".join(token))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes["refused"] > 2500


def test_many_random_claims_are_judged_alike() -> None:
    rng = random.Random(7519)
    outcomes: set[str] = set()
    for _ in range(2000):
        changes = {
            claim: rng.choice(VALUES)
            for claim in rng.sample([*REQUIRE, "username"], rng.randint(1, 4))
        }
        header = dict(HEADER)
        if rng.random() < 0.2:
            header["kid"] = rng.choice(VALUES)
            if header["kid"] is _DROP:
                del header["kid"]
        outcomes.add(_same(_token(header, _claims(**changes))))
    assert outcomes == {"accepted", "refused"}


def test_a_key_shorter_than_256_bits_is_refused() -> None:
    short = KEY[:31]
    assert _ours(_token(HEADER, _claims(), key=short), short)[0] == "refused"
    assert _ours(_token(HEADER, _claims(), key=KEY), KEY)[0] == "accepted"


def test_verifying_an_hs256_token_loads_neither_pyjwt_nor_cryptography() -> None:
    import subprocess
    import sys

    script = f"""
import sys
from nimbus.security import hs256
token = {_token(HEADER, _claims())!r}
claims = hs256.verify(hs256.parse(token), {KEY!r}, issuer={ISSUER!r}, audience={AUDIENCE!r},
                      leeway=30, require={REQUIRE!r})
assert claims["sub"] == "u1"
loaded = [m for m in sys.modules if m.split(".")[0] in ("jwt", "cryptography")]
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", script], check=True)
