"""TOTP codes against RFC 6238's test vectors, and the window nimbus accepts them in."""

import base64
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from nimbus.security import totp

# RFC 6238, Appendix B: the seeds are ASCII digits repeated to each hash's block size.
SEEDS = {
    "sha1": b"12345678901234567890",
    "sha256": b"12345678901234567890123456789012",
    "sha512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("timestamp", "sha1", "sha256", "sha512"), VECTORS)
def test_codes_match_the_rfc_vectors(timestamp: int, sha1: str, sha256: str, sha512: str) -> None:
    for digest, expected in (("sha1", sha1), ("sha256", sha256), ("sha512", sha512)):
        secret = base64.b32encode(SEEDS[digest]).decode().rstrip("=")
        step = totp.step_at(timestamp)
        assert totp.code_at(secret, step, digits=8, digest=digest) == expected
    # Six digits are the last six of the eight.
    secret = base64.b32encode(SEEDS["sha1"]).decode()
    assert totp.code_at(secret, totp.step_at(timestamp)) == sha1[-6:]


def test_a_code_is_accepted_one_step_either_side_and_never_at_or_before_the_last() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, totp.code_at(secret, step + offset), now, after=0) == (
            step + offset
        )
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, step + offset)
        # A code of a far step may by chance equal a near one's: only then may it pass.
        near = {totp.code_at(secret, step + o) for o in (-1, 0, 1)}
        if code not in near:
            assert totp.matching_step(secret, code, now, after=0) is None
    current = totp.code_at(secret, step)
    assert totp.matching_step(secret, current, now, after=step) is None
    assert totp.matching_step(secret, current, now, after=step - 1) == step


def test_secrets_are_random_base32_of_160_bits() -> None:
    secrets = {totp.new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert len(base64.b32decode(secret + "=" * (-len(secret) % 8))) == 20


def test_the_uri_is_what_authenticator_apps_read() -> None:
    uri = totp.provisioning_uri("JBSWY3DPEHPK3PXP", account="alice@example.com", issuer="Acme Co")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Acme Co:alice@example.com"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query == {
        "secret": "JBSWY3DPEHPK3PXP",
        "issuer": "Acme Co",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }
    # A label character that would end the path or start the query is escaped.
    tricky = totp.provisioning_uri("JBSWY3DPEHPK3PXP", account="a/b?c#d", issuer="x&y")
    assert "?" not in urlsplit(tricky).path
    assert "#" not in tricky
    assert parse_qs(urlsplit(tricky).query)["issuer"] == ["x&y"]


def test_the_qr_code_is_a_standalone_svg() -> None:
    svg = totp.qr_svg("otpauth://totp/nimbus:alice?secret=JBSWY3DPEHPK3PXP")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert svg.rstrip().endswith("</svg>")
    assert "<path" in svg
    assert "href" not in svg
    assert "<script" not in svg


@pytest.mark.parametrize(
    ("typed", "is_code"),
    [("123456", True), ("12345", False), ("1234567", False), ("١٢٣٤٥٦", False), ("abcdef", False)],
)
def test_only_six_ascii_digits_are_a_code(typed: str, is_code: bool) -> None:
    assert totp.is_code(typed) is is_code
