"""The storage interface: one Protocol per store, and the bundle a backend opens.

Every method is one atomic operation against the store; none reads, changes in Python and
writes back. Missing records raise NotFound, unique-value clashes Conflict, stale versions
PreconditionFailed, and an unreachable store Unavailable (see nimbus.domain.errors).
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.messages import Message
from nimbus.domain.mfa import TotpFactor
from nimbus.domain.paging import Page
from nimbus.domain.passkeys import Passkey
from nimbus.domain.principals import SessionCheck
from nimbus.domain.products import Product, ProductChanges
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.signing_keys import SigningKey
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.domain.users import User, UserChanges

# The relational backends' tables, children first so that dropping in order breaks no key.
TABLES = (
    "audit_events",
    "service_credentials",
    "signing_keys",
    "products",
    "messages",
    "rate_limits",
    "revoked_tokens",
    "refresh_tokens",
    "sessions",
    "passkeys",
    "recovery_codes",
    "totp_factors",
    "todos",
    "users",
)


class UserStore(Protocol):
    def add(self, user: User) -> None:
        """Store a new user; Conflict if its username or email is taken."""

    def get(self, user_id: str) -> User:
        """The user with this id; NotFound if there is none."""

    def find_by_username(self, username: str) -> User | None:
        """The user with this username, compared case-insensitively."""

    def find_by_email(self, email: str) -> User | None:
        """The user with this email, compared case-insensitively."""

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        """Users, oldest first."""

    def find_by_external_subject(self, subject: str) -> User | None:
        """The account linked to an OIDC provider's "issuer|sub"."""

    def other_admin_exists(self, user_id: str) -> bool:
        """Whether an enabled administrator other than `user_id` exists."""

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        """Set last_login, and replace the password hash when it was upgraded at login."""

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        """Apply changes and bump the version in one write; Conflict if the email is taken."""

    def delete(self, user_id: str) -> None:
        """Remove the user with everything it owns (todos, messages, sessions)."""


class TodoStore(Protocol):
    """`live`, when given, is checked by the same call: the answer is Unauthenticated, and
    nothing is written, unless the access token it names is still good (SessionStore's
    is_active), before anything else is said about the todo."""

    def add(self, todo: Todo, *, live: SessionCheck | None = None) -> None:
        """Store a new todo."""

    def get(self, owner: str, uid: str, *, live: SessionCheck | None = None) -> Todo:
        """The owner's todo; NotFound if there is none (another user's todo is not found)."""

    def list(
        self,
        owner: str,
        *,
        state: TodoState | None,
        limit: int,
        cursor: str | None,
        live: SessionCheck | None = None,
    ) -> Page[Todo]:
        """The owner's todos, newest first, optionally only those in `state`."""

    def update(
        self,
        owner: str,
        uid: str,
        changes: TodoChanges,
        *,
        expected_version: int | None,
        at: datetime,
        live: SessionCheck | None = None,
    ) -> Todo:
        """Apply changes and bump the version in one write, if the version still matches."""

    def delete(
        self,
        owner: str,
        uid: str,
        *,
        expected_version: int | None,
        live: SessionCheck | None = None,
    ) -> None:
        """Remove the todo, if the version still matches."""


class MessageStore(Protocol):
    def add(self, message: Message) -> None:
        """Store a new message; NotFound if its author no longer exists."""

    def list(self, *, limit: int, cursor: str | None) -> Page[Message]:
        """Every message, newest first."""


class ProductStore(Protocol):
    def add(self, product: Product) -> None:
        """Store a new product; Conflict if its id exists."""

    def add_many(self, products: Sequence[Product]) -> None:
        """Store new products (fresh ids) in as few requests as the store allows; not atomic
        everywhere: DynamoDB writes in batches of 25, so a failure may leave earlier ones."""

    def get(self, product_id: str) -> Product:
        """The product with this id; NotFound if there is none."""

    def list(self, *, limit: int, cursor: str | None) -> Page[Product]:
        """Products, oldest first."""

    def update(
        self,
        product_id: str,
        changes: ProductChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Product:
        """Apply changes and bump the version in one write, if the version still matches."""

    def delete(self, product_id: str, *, expected_version: int | None) -> None:
        """Remove the product, if the version still matches."""


class CredentialStore(Protocol):
    def add(self, credential: ServiceCredential) -> None:
        """Store a new credential; Conflict if its access key id exists."""

    def get(self, access_key_id: str) -> ServiceCredential | None:
        """The credential with this access key id, revoked or not."""

    def list(self) -> list[ServiceCredential]:
        """Every credential, oldest first (there are few: one per calling service)."""

    def revoke(self, access_key_id: str, at: datetime) -> ServiceCredential:
        """Mark the credential revoked (once: a second revoke keeps the first time);
        NotFound if there is none."""


class SessionStore(Protocol):
    def start(self, session: Session, token: RefreshToken) -> None:
        """Store a new session with its first refresh token."""

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        """A refresh token and its session."""

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        """Mark `used_id` used and store its replacement, atomically, and set the session's
        last_used_at to `at`; False if it was used already or its session is revoked (the
        caller then treats it as a replay)."""

    def revoke(self, session_id: str, at: datetime) -> None:
        """End a session and so every token issued in it."""

    def revoke_all(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        """End every session of a user, but the session `keep` when given."""

    def list_active(self, user_id: str) -> list[Session]:
        """A user's sessions that have not been revoked, most recently used first (a
        session never refreshed counts as used when it was created)."""

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        """Refuse this access token until it expires anyway (records past expiry may go)."""

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        """Whether a token from this session (if it has one) with this jti may still be used."""


class FactorStore(Protocol):
    """Each account's second factor: one TOTP factor at most, with its recovery codes (kept
    as keyed digests, each usable once)."""

    def begin(self, factor: TotpFactor) -> None:
        """Store a pending factor, replacing a pending one; Conflict if the user has a
        confirmed factor; NotFound if the user does not exist."""

    def get(self, user_id: str) -> TotpFactor | None:
        """The user's factor, pending or confirmed."""

    def confirm(
        self,
        user_id: str,
        sealed_secret: str,
        *,
        step: int,
        recovery_codes: Sequence[str],
        at: datetime,
    ) -> bool:
        """Confirm the pending factor with this sealed secret, accepting `step`, and store
        its recovery codes (digests) in the same write; False if there is no such pending
        factor (another enrolment replaced it, or it is confirmed already)."""

    def use_step(self, user_id: str, step: int) -> bool:
        """Accept a code of `step` on the confirmed factor: atomically, only if `step` is
        later than its last accepted step. False otherwise (a replay)."""

    def use_recovery_code(self, user_id: str, digest: str) -> bool:
        """Spend the confirmed factor's unused recovery code with this digest, atomically
        (two requests with one code: one wins); False if there is none."""

    def remove(self, user_id: str) -> bool:
        """Remove the user's factor and recovery codes; False if there was none."""


class PasskeyStore(Protocol):
    """Each account's passkeys (WebAuthn credentials), keyed by credential id."""

    def add(self, passkey: Passkey) -> None:
        """Store a new passkey; Conflict if its credential id is registered (to any account);
        NotFound if the user does not exist."""

    def list_for(self, user_id: str) -> list[Passkey]:
        """The user's passkeys, oldest first (by creation, then credential id)."""

    def get(self, credential_id: str) -> Passkey | None:
        """The passkey with this credential id, read consistently."""

    def record_use(self, credential_id: str, sign_count: int, at: datetime) -> bool:
        """Record a use with the authenticator's counter, atomically only if `sign_count` is
        greater than the stored one, or both are 0; False otherwise (a clone, or a use that
        raced this one) or if there is no such passkey."""

    def remove(self, user_id: str, credential_id: str) -> bool:
        """Remove the user's passkey; False if the user has none with this id."""


class SigningKeyStore(Protocol):
    """The access-token signing keys `nimbus keys rotate` made, each sealed under the root
    key; few (one per rotation), never changed."""

    def add(self, key: SigningKey) -> None:
        """Store a new key; Conflict if its kid exists."""

    def list(self) -> list[SigningKey]:
        """Every key, oldest first (by creation, then kid); read consistently, so a key added
        before the call is in it."""


class RateLimitStore(Protocol):
    def take(self, key: str, limit: int, window_seconds: int, at: datetime) -> datetime | None:
        """Count one event under `key` if fewer than `limit` are counted in its current fixed
        window, atomically across workers: None once counted, else (nothing counted) when the
        full window started."""

    def give_back(self, key: str) -> None:
        """Uncount one event under `key`: a reservation that turned out not to count."""

    def clear(self, key: str) -> None:
        """Forget the events under `key`."""


class AuditStore(Protocol):
    def append(self, event: AuditEvent, *, expires_at: datetime) -> None:
        """Store a new event, kept until `expires_at` (then prune, or DynamoDB's TTL, removes
        it); Conflict if its id exists."""

    def list(
        self,
        *,
        subject: str | None,
        kind: AuditKind | None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEvent]:
        """Events, newest first, only those of `subject` and of `kind` when given."""

    def prune(self, now: datetime, *, limit: int) -> int:
        """Remove up to `limit` events kept until before `now`; how many went. DynamoDB
        removes them itself (TTL), so its store removes none."""


class Storage(Protocol):
    """An opened backend: its stores, and what the service needs to manage it."""

    users: UserStore
    todos: TodoStore
    messages: MessageStore
    products: ProductStore
    credentials: CredentialStore
    signing_keys: SigningKeyStore
    sessions: SessionStore
    factors: FactorStore
    passkeys: PasskeyStore
    rate_limits: RateLimitStore
    audit: AuditStore
    # A file in this process's reach (SQLite): its schema costs no network call to check.
    embedded: bool
    # Whether its reads never wait (no network, no lock): they then cost less than the hop to
    # a worker thread, and run on the event loop (nimbus.calls).
    inline_reads: bool

    def create_schema(self) -> list[str]:
        """Create tables and indexes if they do not exist (safe from several workers at once);
        returns the names of every table the store uses."""

    def drop_schema(self) -> list[str]:
        """Remove every table nimbus made (and its data); returns their names."""

    def ping(self) -> None:
        """Return if the store answers and takes a write (one small row of its own);
        Unavailable otherwise."""

    def close(self) -> None:
        """Release connections."""
