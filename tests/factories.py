"""Domain objects for tests, with defaults that can be overridden field by field, and the
accounts the API tests act as."""

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from nimbus.container import Container
from nimbus.domain.credentials import ServiceCredential
from nimbus.domain.ids import new_id
from nimbus.domain.messages import Message
from nimbus.domain.mfa import TotpFactor
from nimbus.domain.principals import Principal, scopes_for
from nimbus.domain.products import Product
from nimbus.domain.sessions import RefreshToken, Session
from nimbus.domain.signing_keys import SigningKey
from nimbus.domain.todos import Todo, TodoState
from nimbus.domain.users import Role, User
from tests.support import PASSWORD, log_in, sign_up

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def a_user(**fields: Any) -> User:
    user_id = fields.pop("id", None) or new_id()
    user = User(
        id=user_id,
        username=f"user-{user_id[-12:]}",
        email=None,
        name=None,
        role=Role.USER,
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        created_at=NOW,
        updated_at=NOW,
        last_login=None,
        version=1,
    )
    return replace(user, **fields)


def a_principal(user: User, **fields: Any) -> Principal:
    """Who `user` is to a service once its access token is verified."""
    principal = Principal(
        user_id=user.id,
        username=user.username,
        role=user.role,
        groups=user.groups,
        scopes=scopes_for(user.role),
        token_id=new_id(),
        expires_at=NOW + timedelta(minutes=15),
        session_id=new_id(),
    )
    return replace(principal, **fields)


def a_todo(owner: User, **fields: Any) -> Todo:
    todo = Todo(
        uid=new_id(),
        owner=owner.id,
        username=owner.username,
        description="Buy milk",
        state=TodoState.UNSTARTED,
        metadata={},
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )
    return replace(todo, **fields)


def a_session(user: User, **fields: Any) -> Session:
    session = Session(
        id=new_id(), user_id=user.id, scopes=frozenset({"todos"}), created_at=NOW, revoked_at=None
    )
    return replace(session, **fields)


def a_refresh_token(session: Session, **fields: Any) -> RefreshToken:
    token = RefreshToken(
        id=new_id(),
        session_id=session.id,
        secret_hash="0" * 64,
        created_at=NOW,
        expires_at=NOW + timedelta(days=30),
        used_at=None,
    )
    return replace(token, **fields)


def a_message(author: User, **fields: Any) -> Message:
    message = Message(
        id=new_id(), author_id=author.id, author=author.username, text="Hello", created_at=NOW
    )
    return replace(message, **fields)


def a_product(**fields: Any) -> Product:
    product = Product(
        id=new_id(),
        name="Widget",
        description="A widget",
        price_cents=1999,
        stock=5,
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )
    return replace(product, **fields)


def a_credential(**fields: Any) -> ServiceCredential:
    access_key_id = (
        fields.pop("access_key_id", None) or "NK" + new_id().replace("-", "")[-16:].upper()
    )
    credential = ServiceCredential(
        access_key_id=access_key_id,
        name=f"service-{access_key_id[-6:].lower()}",
        sealed_secret="sealed:" + new_id(),
        created_at=NOW,
        revoked_at=None,
    )
    return replace(credential, **fields)


def a_totp_factor(user: User, **fields: Any) -> TotpFactor:
    """A pending TOTP factor of `user` (its secret as a placeholder, not sealed)."""
    factor = TotpFactor(
        user_id=user.id,
        sealed_secret="sealed:" + new_id(),
        created_at=NOW,
        confirmed_at=None,
        last_step=0,
        recovery_codes_left=0,
    )
    return replace(factor, **fields)


def a_signing_key(**fields: Any) -> SigningKey:
    """A rotated signing key as stored (its sealed key a placeholder, which opens nowhere)."""
    key = SigningKey(
        kid=fields.pop("kid", None) or new_id().replace("-", "")[-16:],
        sealed_key="v1.sealed-" + new_id(),
        created_at=NOW,
    )
    return replace(key, **fields)


@dataclass(frozen=True, slots=True)
class Account:
    """A user of a running nimbus, logged in once."""

    id: str
    username: str
    headers: dict[str, str]  # Authorization: Bearer with its access token


def an_account(client: httpx.Client, username: str, **extra: Any) -> Account:
    """Sign `username` up through the API (`extra`: email, name) and log it in."""
    user = sign_up(client, username, **extra)
    return Account(user["id"], username, _bearer(client, username))


def an_admin(client: httpx.Client, container: Container, username: str = "root") -> Account:
    """An administrator, made as `nimbus users create --admin` makes one, and logged in."""
    user = container.users.create(username=username, password=PASSWORD, role=Role.ADMIN)
    return Account(user.id, username, _bearer(client, username))


def _bearer(client: httpx.Client, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {log_in(client, username)}"}
