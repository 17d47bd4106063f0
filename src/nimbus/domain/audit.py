"""The audit trail: security events, each saying who did what to whom, when, from where and in
which request.

An event never holds a secret: no password, hash, token or key; `detail` holds a few plain
facts (the new role, a credential's access key id, the session a login started).
"""

from collections.abc import Mapping
from dataclasses import field
from datetime import datetime
from enum import StrEnum

from nimbus.values import frozen


class AuditKind(StrEnum):
    """Every kind of event the trail records; nothing else is written to it."""

    SIGNUP = "user.signup"  # a public sign-up (POST /users, POST /user)
    USER_CREATED = "user.created"  # by the operator (nimbus users create)
    LOGIN_OK = "login.ok"
    LOGIN_FAILED = "login.failed"  # a wrong password, or an unknown account (no subject)
    LOGIN_THROTTLED = "login.throttled"  # refused unchecked by a login limit
    LOGOUT = "logout"
    REFRESH_REUSE = "refresh.reuse"  # a rotated refresh token used again: its session ended
    PASSWORD_CHANGED = "password.changed"
    EMAIL_CHANGED = "email.changed"
    NAME_CHANGED = "name.changed"
    ROLE_CHANGED = "role.changed"
    USER_DELETED = "user.deleted"
    CREDENTIAL_CREATED = "credential.created"
    CREDENTIAL_REVOKED = "credential.revoked"
    KEY_ROTATED = "key.rotated"  # a signing key added (nimbus keys rotate); subject: its kid
    OIDC_ENROLLED = "oidc.enrolled"  # an OIDC provider's user seen first: an account made
    PASSWORD_RESET_REQUESTED = "password.reset_requested"  # a reset link mailed
    PASSWORD_RESET = "password.reset"  # a new password set through a reset link
    EMAIL_VERIFIED = "email.verified"
    SESSION_ENDED = "session.ended"  # one ended from the sessions list, or every other one
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    MFA_ENABLED = "mfa.enabled"  # a TOTP factor confirmed
    MFA_DISABLED = "mfa.disabled"
    MFA_FAILED = "mfa.failed"  # a wrong or replayed second-factor code
    RECOVERY_CODE_USED = "mfa.recovery_code_used"
    PASSKEY_ADDED = "passkey.added"
    PASSKEY_REMOVED = "passkey.removed"
    PASSKEY_REFUSED = "passkey.refused"  # a counter gone backwards (a clone), or bad origin


@frozen
class AuditEvent:
    """One security event. `actor` did it (a user's id; None for the operator at the command
    line, or someone not signed in); `subject` is whom or what it was done to (a user's id, a
    service credential's access key id, or a signing key's kid). An administrator's action on
    another account has actor != subject."""

    id: str  # UUIDv7: the trail lists newest first by id
    at: datetime
    kind: AuditKind
    actor: str | None
    subject: str | None
    client: str | None  # the client's address, through the trusted proxies
    request_id: str | None  # the X-Request-ID of the request it happened in
    detail: Mapping[str, str] = field(default_factory=dict)
