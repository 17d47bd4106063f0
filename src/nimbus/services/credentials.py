"""Service credentials: issued to calling services, checked on every signed request."""

import logging
import re
import secrets

from nimbus.domain.audit import AuditKind
from nimbus.domain.credentials import ServiceCaller, ServiceCredential
from nimbus.domain.errors import InvalidInput, SignatureRejected
from nimbus.security import sigv4
from nimbus.security.secretbox import SecretBox
from nimbus.services.audit import AuditTrail
from nimbus.services.clock import Clock, utc_now
from nimbus.services.reads import read_only
from nimbus.storage.base import CredentialStore

log = logging.getLogger(__name__)

ACCESS_KEY_PREFIX = "NIMB"
_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ACCESS_KEY_PATTERN = re.compile(rf"^{ACCESS_KEY_PREFIX}[{_KEY_ALPHABET}]{{16}}$")
NAME_PATTERN = re.compile(r"^[\w.@+:/ -]{1,100}$")
SEALING_PURPOSE = "nimbus service credential secret"


class CredentialService:
    def __init__(
        self,
        store: CredentialStore,
        box: SecretBox,
        *,
        audit: AuditTrail,
        region: str,
        clock: Clock = utc_now,
    ) -> None:
        self._store = store
        self._box = box
        self._audit = audit
        self._region = region
        self._clock = clock

    def create(self, name: str) -> tuple[ServiceCredential, str]:
        """A new credential and its secret access key, which is shown only this once."""
        if not NAME_PATTERN.fullmatch(name) or name != name.strip():
            raise InvalidInput("A credential name is 1-100 letters, digits, spaces or _.@+:/-")
        # 80 random bits in the id, 240 in the secret: the shapes AWS's keys have.
        access_key_id = ACCESS_KEY_PREFIX + "".join(
            secrets.choice(_KEY_ALPHABET) for _ in range(16)
        )
        secret = secrets.token_urlsafe(30)
        credential = ServiceCredential(
            access_key_id=access_key_id,
            name=name,
            sealed_secret=self._box.seal(secret, context=access_key_id),
            created_at=self._clock(),
        )
        self._store.add(credential)
        self._audit.record(
            AuditKind.CREDENTIAL_CREATED, subject=access_key_id, detail={"name": name}
        )
        return credential, secret

    def list(self) -> list[ServiceCredential]:
        return self._store.list()

    def revoke(self, access_key_id: str) -> ServiceCredential:
        credential = self._store.revoke(access_key_id, self._clock())
        self._audit.record(
            AuditKind.CREDENTIAL_REVOKED, subject=access_key_id, detail={"name": credential.name}
        )
        return credential

    @read_only
    def authenticate(self, request: sigv4.SignedRequest) -> ServiceCaller:
        """The caller whose credential signed this request; SignatureRejected (403) if none."""
        signature = sigv4.read_signature(request)
        now = self._clock()
        # What needs no secret is checked first, so a stale or misdirected request costs no read.
        sigv4.check_scope(signature, region=self._region, service=sigv4.SERVICE, now=now)
        key_id = signature.access_key_id
        credential = self._store.get(key_id) if ACCESS_KEY_PATTERN.fullmatch(key_id) else None
        if credential is None:
            raise SignatureRejected(
                "The access key ID is not one this service issued", code="invalid_access_key"
            )
        if not credential.active:
            raise SignatureRejected("The access key has been revoked", code="access_key_revoked")
        try:
            secret = self._box.open(credential.sealed_secret, context=key_id)
        except ValueError as exc:
            log.error("credential %s does not open: was the signing key replaced?", key_id)
            raise SignatureRejected(
                "The access key can no longer be used: create a new one",
                code="invalid_access_key",
            ) from exc
        sigv4.verify(request, signature, secret, region=self._region, now=now)
        return ServiceCaller(access_key_id=key_id, name=credential.name)
