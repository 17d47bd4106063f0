"""Service credentials: access key pairs that sign requests with AWS Signature Version 4.

The secret is needed to verify a signature (SigV4 is an HMAC), so it is kept, sealed with a
key derived from the service's signing key: a copy of the store alone does not give it away.
"""

from dataclasses import field
from datetime import datetime

from nimbus.values import frozen

NAME_MAX_LENGTH = 100


@frozen
class ServiceCredential:
    access_key_id: str
    name: str
    # The secret access key, encrypted (nimbus.security.secretbox).
    sealed_secret: str = field(repr=False)
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@frozen
class ServiceCaller:
    """Who signed a request: a nimbus credential, or an IAM identity API Gateway verified."""

    access_key_id: str
    name: str
