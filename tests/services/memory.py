"""The store Protocols (nimbus.storage.base) over dicts in this process, for service tests.

Each method holds one lock, so each call is as atomic as the real stores' one statement or
transaction; the errors and orderings are theirs (the contract suite runs this store too).
"""

import copy
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from nimbus.domain.audit import AuditEvent, AuditKind
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.errors import Conflict, NotFound, PreconditionFailed, Unauthenticated
from nimbus.domain.messages import Message
from nimbus.domain.mfa import TotpFactor
from nimbus.domain.paging import Page, decode_cursor, encode_cursor
from nimbus.domain.passkeys import Passkey
from nimbus.domain.principals import SessionCheck
from nimbus.domain.products import Product, ProductChanges
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.signing_keys import SigningKey
from nimbus.domain.todos import Todo, TodoChanges, TodoState
from nimbus.domain.users import Role, Unset, User, UserChanges, email_key, username_key
from nimbus.storage.base import (
    AuditStore,
    CredentialStore,
    FactorStore,
    MessageStore,
    PasskeyStore,
    ProductStore,
    RateLimitStore,
    SessionStore,
    SigningKeyStore,
    TodoStore,
    UserStore,
)

T = TypeVar("T")

# As the SQL stores keep a revoked access token past its expiry, beyond any verifier's leeway.
REVOCATION_MARGIN = timedelta(hours=1)
OWNER_GONE = "The owner no longer exists"


def _page(ordered: Iterable[T], limit: int, key: Callable[[T], str], name: str) -> Page[T]:
    """Up to `limit` items, and a cursor past the last one when more follow."""
    items: list[T] = []
    for item in ordered:
        if len(items) == limit:
            return Page(items, encode_cursor({name: key(items[-1])}))
        items.append(item)
    return Page(items, None)


def _check_version(version: int, expected: int | None) -> None:
    if expected is not None and version != expected:
        raise PreconditionFailed()


class _Data:
    """Every table, behind one lock: a user's removal reaches its todos, messages, sessions
    and second factor."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.users: dict[str, User] = {}
        self.todos: dict[tuple[str, str], Todo] = {}
        self.messages: dict[str, Message] = {}
        self.products: dict[str, Product] = {}
        self.credentials: dict[str, ServiceCredential] = {}
        self.signing_keys: dict[str, SigningKey] = {}
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.revoked_tokens: dict[str, datetime] = {}
        self.rate_limits: dict[str, tuple[datetime, int]] = {}
        self.audit_events: dict[str, tuple[AuditEvent, datetime]] = {}
        self.factors: dict[str, TotpFactor] = {}
        self.recovery_codes: dict[str, set[str]] = {}  # the unused ones, by user
        self.passkeys: dict[str, Passkey] = {}

    def clear(self) -> None:
        with self.lock:
            for table in (
                self.users, self.todos, self.messages, self.products, self.credentials,
                self.sessions, self.refresh_tokens, self.revoked_tokens, self.rate_limits,
                self.audit_events, self.factors, self.recovery_codes, self.signing_keys,
                self.passkeys,
            ):  # fmt: skip
                table.clear()

    def require_owner(self, user_id: str) -> None:
        if user_id not in self.users:
            raise NotFound(OWNER_GONE)

    def is_active(self, session_id: str | None, jti: str) -> bool:
        with self.lock:
            if jti in self.revoked_tokens:
                return False
            if session_id is None:
                return True
            session = self.sessions.get(session_id)
            return session is not None and session.revoked_at is None

    def require_live(self, live: SessionCheck | None) -> None:
        if live is not None and not self.is_active(live.session_id, live.token_id):
            raise Unauthenticated()


class MemoryUserStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, user: User) -> None:
        with self._data.lock:
            users = self._data.users.values()
            if user.id in self._data.users or (
                user.external_subject is not None
                and any(other.external_subject == user.external_subject for other in users)
            ):
                raise Conflict("The record already exists")
            if any(username_key(other.username) == username_key(user.username) for other in users):
                raise Conflict("That username is taken")
            if user.email and self._email_owner(user.email) is not None:
                raise Conflict("That email is already registered")
            self._data.users[user.id] = user

    def get(self, user_id: str) -> User:
        with self._data.lock:
            user = self._data.users.get(user_id)
        if user is None:
            raise NotFound("User not found")
        return user

    def find_by_username(self, username: str) -> User | None:
        key = username_key(username)
        with self._data.lock:
            return next(
                (user for user in self._data.users.values() if username_key(user.username) == key),
                None,
            )

    def find_by_email(self, email: str) -> User | None:
        with self._data.lock:
            return self._email_owner(email)

    def list(self, *, limit: int, cursor: str | None) -> Page[User]:
        after = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else ""
        with self._data.lock:
            users = sorted(self._data.users.values(), key=lambda user: user.id)
        return _page((user for user in users if user.id > after), limit, lambda u: u.id, "id")

    def find_by_external_subject(self, subject: str) -> User | None:
        with self._data.lock:
            return next(
                (user for user in self._data.users.values() if user.external_subject == subject),
                None,
            )

    def other_admin_exists(self, user_id: str) -> bool:
        with self._data.lock:
            return any(
                user.role is Role.ADMIN and not user.disabled and user.id != user_id
                for user in self._data.users.values()
            )

    def record_login(self, user_id: str, at: datetime, password_hash: str | None) -> None:
        with self._data.lock:
            user = self._data.users.get(user_id)
            if user is not None:  # as an UPDATE that matches no row
                self._data.users[user_id] = replace(
                    user, last_login=at, password_hash=password_hash or user.password_hash
                )

    def update(
        self, user_id: str, changes: UserChanges, *, expected_version: int | None, at: datetime
    ) -> User:
        with self._data.lock:
            user = self.get(user_id)
            _check_version(user.version, expected_version)
            if not isinstance(changes.email, Unset) and changes.email:
                owner = self._email_owner(changes.email)
                if owner is not None and owner.id != user_id:
                    raise Conflict("That email is already registered")
            updated = replace(user, updated_at=at, version=user.version + 1)
            if not isinstance(changes.email, Unset):
                updated = replace(updated, email=changes.email)
            if not isinstance(changes.name, Unset):
                updated = replace(updated, name=changes.name)
            if not isinstance(changes.role, Unset):
                updated = replace(updated, role=changes.role)
            if not isinstance(changes.password_hash, Unset):
                updated = replace(updated, password_hash=changes.password_hash)
            if not isinstance(changes.email_verified, Unset):
                updated = replace(updated, email_verified=changes.email_verified)
            if not isinstance(changes.disabled_at, Unset):
                updated = replace(updated, disabled_at=changes.disabled_at)
            self._data.users[user_id] = updated
            return updated

    def delete(self, user_id: str) -> None:
        data = self._data
        with data.lock:
            if data.users.pop(user_id, None) is None:
                raise NotFound("User not found")
            for owned in [owned for owned in data.todos if owned[0] == user_id]:
                del data.todos[owned]
            for message in [m for m in data.messages.values() if m.author_id == user_id]:
                del data.messages[message.id]
            ended = [s.id for s in data.sessions.values() if s.user_id == user_id]
            for session_id in ended:
                del data.sessions[session_id]
            for token in [t for t in data.refresh_tokens.values() if t.session_id in ended]:
                del data.refresh_tokens[token.id]
            data.factors.pop(user_id, None)
            data.recovery_codes.pop(user_id, None)
            for passkey in [p for p in data.passkeys.values() if p.user_id == user_id]:
                del data.passkeys[passkey.credential_id]

    def _email_owner(self, email: str) -> User | None:
        key = email_key(email)
        users = self._data.users.values()
        return next((user for user in users if user.email and email_key(user.email) == key), None)


class MemoryTodoStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, todo: Todo, *, live: SessionCheck | None = None) -> None:
        with self._data.lock:
            self._data.require_live(live)
            self._data.require_owner(todo.owner)
            if (todo.owner, todo.uid) in self._data.todos:
                raise Conflict("The record already exists")
            self._data.todos[todo.owner, todo.uid] = _own_metadata(todo)

    def get(self, owner: str, uid: str, *, live: SessionCheck | None = None) -> Todo:
        with self._data.lock:
            self._data.require_live(live)
            todo = self._data.todos.get((owner, uid))
        if todo is None:
            raise NotFound("Todo not found")
        return _own_metadata(todo)

    def list(
        self,
        owner: str,
        *,
        state: TodoState | None,
        limit: int,
        cursor: str | None,
        live: SessionCheck | None = None,
    ) -> Page[Todo]:
        before = decode_cursor(cursor, frozenset({"uid"}))["uid"] if cursor else None
        with self._data.lock:
            self._data.require_live(live)
            todos = [
                _own_metadata(todo)
                for (todo_owner, uid), todo in self._data.todos.items()
                if todo_owner == owner
                and (state is None or todo.state is state)
                and (before is None or uid < before)
            ]
        todos.sort(key=lambda todo: todo.uid, reverse=True)
        return _page(todos, limit, lambda todo: todo.uid, "uid")

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
        with self._data.lock:
            todo = self.get(owner, uid, live=live)
            _check_version(todo.version, expected_version)
            updated = replace(
                todo,
                description=(
                    changes.description if changes.description is not None else todo.description
                ),
                state=changes.state if changes.state is not None else todo.state,
                metadata=changes.metadata if changes.metadata is not None else todo.metadata,
                updated_at=at,
                version=todo.version + 1,
            )
            self._data.todos[owner, uid] = _own_metadata(updated)
            return updated

    def delete(
        self,
        owner: str,
        uid: str,
        *,
        expected_version: int | None,
        live: SessionCheck | None = None,
    ) -> None:
        with self._data.lock:
            _check_version(self.get(owner, uid, live=live).version, expected_version)
            del self._data.todos[owner, uid]


def _own_metadata(todo: Todo) -> Todo:
    # A stored document is no caller's object: changing one afterwards changes nothing kept.
    return replace(todo, metadata=copy.deepcopy(todo.metadata))


class MemoryMessageStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, message: Message) -> None:
        with self._data.lock:
            self._data.require_owner(message.author_id)
            if message.id in self._data.messages:
                raise Conflict("The record already exists")
            self._data.messages[message.id] = message

    def list(self, *, limit: int, cursor: str | None) -> Page[Message]:
        before = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else None
        with self._data.lock:
            messages = sorted(self._data.messages.values(), key=lambda m: m.id, reverse=True)
        return _page(
            (m for m in messages if before is None or m.id < before), limit, lambda m: m.id, "id"
        )


class MemoryProductStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, product: Product) -> None:
        self.add_many([product])

    def add_many(self, products: Sequence[Product]) -> None:
        with self._data.lock:
            ids = [product.id for product in products]
            if len(set(ids)) != len(ids) or any(i in self._data.products for i in ids):
                raise Conflict("The record already exists")
            for product in products:
                self._data.products[product.id] = product

    def get(self, product_id: str) -> Product:
        with self._data.lock:
            product = self._data.products.get(product_id)
        if product is None:
            raise NotFound("Product not found")
        return product

    def list(self, *, limit: int, cursor: str | None) -> Page[Product]:
        after = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else ""
        with self._data.lock:
            products = sorted(self._data.products.values(), key=lambda p: p.id)
        return _page((p for p in products if p.id > after), limit, lambda p: p.id, "id")

    def update(
        self,
        product_id: str,
        changes: ProductChanges,
        *,
        expected_version: int | None,
        at: datetime,
    ) -> Product:
        with self._data.lock:
            product = self.get(product_id)
            _check_version(product.version, expected_version)
            updated = replace(
                product,
                name=changes.name if changes.name is not None else product.name,
                description=(
                    changes.description if changes.description is not None else product.description
                ),
                price_cents=(
                    changes.price_cents if changes.price_cents is not None else product.price_cents
                ),
                stock=changes.stock if changes.stock is not None else product.stock,
                updated_at=at,
                version=product.version + 1,
            )
            self._data.products[product_id] = updated
            return updated

    def delete(self, product_id: str, *, expected_version: int | None) -> None:
        with self._data.lock:
            _check_version(self.get(product_id).version, expected_version)
            del self._data.products[product_id]


class MemoryCredentialStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, credential: ServiceCredential) -> None:
        with self._data.lock:
            if credential.access_key_id in self._data.credentials:
                raise Conflict("The access key already exists")
            self._data.credentials[credential.access_key_id] = credential

    def get(self, access_key_id: str) -> ServiceCredential | None:
        with self._data.lock:
            return self._data.credentials.get(access_key_id)

    def list(self) -> list[ServiceCredential]:
        with self._data.lock:
            credentials = list(self._data.credentials.values())
        return sorted(credentials, key=lambda c: (c.created_at, c.access_key_id))

    def revoke(self, access_key_id: str, at: datetime) -> ServiceCredential:
        with self._data.lock:
            credential = self._data.credentials.get(access_key_id)
            if credential is None:
                raise NotFound("Credential not found")
            if credential.revoked_at is None:
                credential = replace(credential, revoked_at=at)
                self._data.credentials[access_key_id] = credential
            return credential


class MemorySigningKeyStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, key: SigningKey) -> None:
        with self._data.lock:
            if key.kid in self._data.signing_keys:
                raise Conflict("The signing key already exists")
            self._data.signing_keys[key.kid] = key

    def list(self) -> list[SigningKey]:
        with self._data.lock:
            keys = list(self._data.signing_keys.values())
        return sorted(keys, key=lambda k: (k.created_at, k.kid))


class MemorySessionStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def start(self, session: Session, token: RefreshToken) -> None:
        with self._data.lock:
            self._data.require_owner(session.user_id)
            if session.id in self._data.sessions or token.id in self._data.refresh_tokens:
                raise Conflict("The record already exists")
            self._data.sessions[session.id] = session
            self._data.refresh_tokens[token.id] = token

    def find_refresh(self, token_id: str) -> tuple[RefreshToken, Session] | None:
        with self._data.lock:
            token = self._data.refresh_tokens.get(token_id)
            session = self._data.sessions.get(token.session_id) if token is not None else None
            return (token, session) if token is not None and session is not None else None

    def rotate(self, used_id: str, replacement: RefreshToken, at: datetime) -> bool:
        with self._data.lock:
            token = self._data.refresh_tokens.get(used_id)
            if token is None or token.used_at is not None:
                return False
            session = self._data.sessions[token.session_id]
            if session.revoked_at is not None:
                return False
            if replacement.id in self._data.refresh_tokens:
                raise Conflict("The record already exists")
            self._data.sessions[session.id] = replace(session, last_used_at=at)
            self._data.refresh_tokens[used_id] = replace(token, used_at=at)
            self._data.refresh_tokens[replacement.id] = replacement
            return True

    def revoke(self, session_id: str, at: datetime) -> None:
        with self._data.lock:
            self._revoke(lambda session: session.id == session_id, at)

    def revoke_all(self, user_id: str, at: datetime, *, keep: str | None = None) -> None:
        with self._data.lock:
            self._revoke(lambda session: session.user_id == user_id and session.id != keep, at)

    def list_active(self, user_id: str) -> list[Session]:
        with self._data.lock:
            live = [
                session
                for session in self._data.sessions.values()
                if session.user_id == user_id and session.revoked_at is None
            ]
        live.sort(key=lambda s: (s.last_used_at or s.created_at, s.id), reverse=True)
        return live

    def revoke_access_token(self, jti: str, expires_at: datetime, at: datetime) -> None:
        revoked = self._data.revoked_tokens
        with self._data.lock:
            revoked.setdefault(jti, expires_at)
            cutoff = at - REVOCATION_MARGIN
            for old in [old for old, expires in revoked.items() if expires < cutoff]:
                del revoked[old]

    def is_active(self, session_id: str | None, jti: str, at: datetime) -> bool:
        return self._data.is_active(session_id, jti)

    def _revoke(self, which: Callable[[Session], bool], at: datetime) -> None:
        sessions = self._data.sessions
        for key, session in list(sessions.items()):
            if which(session) and session.revoked_at is None:
                sessions[key] = replace(session, revoked_at=at)


class MemoryFactorStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def begin(self, factor: TotpFactor) -> None:
        with self._data.lock:
            self._data.require_owner(factor.user_id)
            current = self._data.factors.get(factor.user_id)
            if current is not None and current.confirmed:
                raise Conflict("The account has a second factor already")
            self._data.factors[factor.user_id] = replace(
                factor, confirmed_at=None, recovery_codes_left=0
            )
            self._data.recovery_codes.pop(factor.user_id, None)

    def get(self, user_id: str) -> TotpFactor | None:
        with self._data.lock:
            factor = self._data.factors.get(user_id)
            left = len(self._data.recovery_codes.get(user_id, ()))
        return replace(factor, recovery_codes_left=left) if factor is not None else None

    def confirm(
        self,
        user_id: str,
        sealed_secret: str,
        *,
        step: int,
        recovery_codes: Sequence[str],
        at: datetime,
    ) -> bool:
        with self._data.lock:
            factor = self._data.factors.get(user_id)
            if factor is None or factor.confirmed or factor.sealed_secret != sealed_secret:
                return False
            self._data.factors[user_id] = replace(factor, confirmed_at=at, last_step=step)
            self._data.recovery_codes[user_id] = set(recovery_codes)
            return True

    def use_step(self, user_id: str, step: int) -> bool:
        with self._data.lock:
            factor = self._data.factors.get(user_id)
            if factor is None or not factor.confirmed or step <= factor.last_step:
                return False
            self._data.factors[user_id] = replace(factor, last_step=step)
            return True

    def use_recovery_code(self, user_id: str, digest: str) -> bool:
        with self._data.lock:
            factor = self._data.factors.get(user_id)
            codes = self._data.recovery_codes.get(user_id, set())
            if factor is None or not factor.confirmed or digest not in codes:
                return False
            codes.discard(digest)
            return True

    def remove(self, user_id: str) -> bool:
        with self._data.lock:
            self._data.recovery_codes.pop(user_id, None)
            return self._data.factors.pop(user_id, None) is not None


class MemoryPasskeyStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def add(self, passkey: Passkey) -> None:
        with self._data.lock:
            self._data.require_owner(passkey.user_id)
            if passkey.credential_id in self._data.passkeys:
                raise Conflict("This passkey is registered already", code="passkey_registered")
            self._data.passkeys[passkey.credential_id] = passkey

    def list_for(self, user_id: str) -> list[Passkey]:
        with self._data.lock:
            owned = [p for p in self._data.passkeys.values() if p.user_id == user_id]
        return sorted(owned, key=lambda p: (p.created_at, p.credential_id))

    def get(self, credential_id: str) -> Passkey | None:
        with self._data.lock:
            return self._data.passkeys.get(credential_id)

    def record_use(self, credential_id: str, sign_count: int, at: datetime) -> bool:
        with self._data.lock:
            passkey = self._data.passkeys.get(credential_id)
            if passkey is None:
                return False
            if not (passkey.sign_count < sign_count or passkey.sign_count == sign_count == 0):
                return False
            self._data.passkeys[credential_id] = replace(
                passkey, sign_count=sign_count, last_used_at=at
            )
            return True

    def remove(self, user_id: str, credential_id: str) -> bool:
        with self._data.lock:
            passkey = self._data.passkeys.get(credential_id)
            if passkey is None or passkey.user_id != user_id:
                return False
            del self._data.passkeys[credential_id]
            return True


class MemoryRateLimitStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def take(self, key: str, limit: int, window_seconds: int, at: datetime) -> datetime | None:
        counts = self._data.rate_limits
        with self._data.lock:
            started, count = counts.get(key, (at, 0))
            if key not in counts or started <= at - timedelta(seconds=window_seconds):
                counts[key] = (at, 1)  # a new window, which counts this event whatever the limit
                return None
            if count >= limit:
                return started
            counts[key] = (started, count + 1)
            return None

    def give_back(self, key: str) -> None:
        counts = self._data.rate_limits
        with self._data.lock:
            if key in counts and counts[key][1] > 0:
                started, count = counts[key]
                counts[key] = (started, count - 1)

    def clear(self, key: str) -> None:
        with self._data.lock:
            self._data.rate_limits.pop(key, None)


class MemoryAuditStore:
    def __init__(self, data: _Data) -> None:
        self._data = data

    def append(self, event: AuditEvent, *, expires_at: datetime) -> None:
        with self._data.lock:
            if event.id in self._data.audit_events:
                raise Conflict("The record already exists")
            # A stored event is no caller's object: its detail is copied in, as a row is.
            kept = replace(event, detail=dict(event.detail))
            self._data.audit_events[event.id] = (kept, expires_at)

    def list(
        self,
        *,
        subject: str | None,
        kind: AuditKind | None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEvent]:
        before = decode_cursor(cursor, frozenset({"id"}))["id"] if cursor else None
        with self._data.lock:
            events = sorted(
                (event for event, _ in self._data.audit_events.values()),
                key=lambda event: event.id,
                reverse=True,
            )
        return _page(
            (
                replace(event, detail=dict(event.detail))
                for event in events
                if (subject is None or event.subject == subject)
                and (kind is None or event.kind is kind)
                and (before is None or event.id < before)
            ),
            limit,
            lambda event: event.id,
            "id",
        )

    def prune(self, now: datetime, *, limit: int) -> int:
        with self._data.lock:
            due = [key for key, (_, expires) in self._data.audit_events.items() if expires <= now]
            for key in due[:limit]:
                del self._data.audit_events[key]
            return len(due[:limit])


class MemoryStorage:
    """Storage (nimbus.storage.base) with nothing outside this process."""

    # A dict is as near as a store gets: no schema to check, no call that waits.
    embedded = True
    inline_reads = True

    def __init__(self) -> None:
        self._data = _Data()
        self.users: UserStore = MemoryUserStore(self._data)
        self.todos: TodoStore = MemoryTodoStore(self._data)
        self.messages: MessageStore = MemoryMessageStore(self._data)
        self.products: ProductStore = MemoryProductStore(self._data)
        self.credentials: CredentialStore = MemoryCredentialStore(self._data)
        self.signing_keys: SigningKeyStore = MemorySigningKeyStore(self._data)
        self.sessions: SessionStore = MemorySessionStore(self._data)
        self.factors: FactorStore = MemoryFactorStore(self._data)
        self.passkeys: PasskeyStore = MemoryPasskeyStore(self._data)
        self.rate_limits: RateLimitStore = MemoryRateLimitStore(self._data)
        self.audit: AuditStore = MemoryAuditStore(self._data)

    def create_schema(self) -> list[str]:
        return []

    def drop_schema(self) -> list[str]:
        self._data.clear()
        return []

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None
