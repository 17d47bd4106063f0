"""A software WebAuthn authenticator for tests: P-256 credentials, "none" attestation, and
the client data a browser would make. It answers the JSON options nimbus sends and gives
back what a browser's PublicKeyCredential.toJSON() does."""

import base64
import copy
import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40
AAGUID = bytes(16)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0


@dataclass
class SoftAuthenticator:
    """Discoverable credentials with user verification. `origin` is where its "browser"
    runs; a ceremony may claim another, or another RP ID, to test what nimbus refuses."""

    origin: str
    credentials: dict[bytes, Credential] = field(default_factory=dict)
    user_verified: bool = True

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential for the options' RP and user
        (with `credential_id`, one that reuses another's id, as a forger would)."""
        rp = rp_id or options["rp"]["id"]
        credential = Credential(
            id=credential_id or os.urandom(32),
            key=ec.generate_private_key(ec.SECP256R1()),
            rp_id=rp,
            user_handle=unb64url(options["user"]["id"]),
        )
        self.credentials[credential.id] = credential
        numbers = credential.key.public_key().public_numbers()
        cose_key = cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )
        attested = AAGUID + struct.pack(">H", len(credential.id)) + credential.id + cose_key
        auth_data = self._auth_data(rp, UP | self._uv() | AT, credential.counter) + attested
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(credential.id),
            "rawId": b64url(credential.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        credential_id: str | None = None,
        origin: str | None = None,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion by the named credential, else the first
        the options allow (or, allowing any, the first this authenticator holds)."""
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials", [])]
        if credential_id is not None:
            chosen = self.credentials[unb64url(credential_id)]
        else:
            ids = [i for i in self.credentials if not allowed or i in allowed]
            chosen = self.credentials[ids[0]]
        chosen.counter += 1
        auth_data = self._auth_data(rp_id or chosen.rp_id, UP | self._uv(), chosen.counter)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = chosen.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": b64url(chosen.id),
            "rawId": b64url(chosen.id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(chosen.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def clone(self) -> "SoftAuthenticator":
        """A copy of every credential, key and counter: what a cloned authenticator is."""
        return copy.deepcopy(self)

    def _uv(self) -> int:
        return UV if self.user_verified else 0

    def _auth_data(self, rp_id: str, flags: int, counter: int) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", counter)

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        data = {"type": kind, "challenge": challenge, "origin": origin or self.origin}
        return json.dumps(data | {"crossOrigin": False}, separators=(",", ":")).encode()
