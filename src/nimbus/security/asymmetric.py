"""Asymmetric access-token keys (NIMBUS_TOKEN_ALGORITHM=ES256 or EdDSA), derived from a key
ring's key bytes.

Each ring key (key 0: the root key; a rotated one: its 256 random bits) yields its private key
through HKDF-SHA256 with a purpose of the algorithm's own: a P-256 scalar in [1, n-1] (48 bytes
reduced, so the bias is below 2^-128), or an Ed25519 seed. Nothing new is stored, and every
process derives the same key from the same bytes. Imported only when an asymmetric algorithm
is configured: an HS256 process (a Lambda cold start) never loads these parts of cryptography.
"""

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from nimbus.values import frozen

# The order of P-256's base point.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_PURPOSE = "nimbus access token key v1 "


@frozen
class KeyPair:
    private: Any  # ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    public: Any
    jwk: dict[str, str]  # the public key alone, as a JWK with its kid, alg and use


def derive(key: bytes, algorithm: str, kid: str) -> KeyPair:
    """The key pair `key` yields for `algorithm` ("ES256" or "EdDSA"), published as `kid`."""
    private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "ES256":
        scalar = int.from_bytes(_expand(key, algorithm, 48)) % (P256_ORDER - 1) + 1
        private = ec.derive_private_key(scalar, ec.SECP256R1())
        public_jwk = ECAlgorithm.to_jwk(private.public_key(), as_dict=True)
    elif algorithm == "EdDSA":
        private = ed25519.Ed25519PrivateKey.from_private_bytes(_expand(key, algorithm, 32))
        public_jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    else:
        raise ValueError(f"{algorithm} is not an asymmetric token algorithm")
    jwk = {name: str(value) for name, value in public_jwk.items()}
    jwk |= {"kid": kid, "alg": algorithm, "use": "sig"}
    return KeyPair(private, private.public_key(), jwk)


def _expand(key: bytes, algorithm: str, length: int) -> bytes:
    info = (_PURPOSE + algorithm).encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(key)
