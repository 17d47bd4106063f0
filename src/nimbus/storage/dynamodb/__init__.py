"""DynamoDB, for the serverless deployment: one table per kind of record, queries only
(but a Scan of the few service credentials).

Tables (names prefixed by `table_prefix`):
- users        id                       plus a GSI `by_kind` (kind, id) for the admin listing
- user_keys    key ("username#...", "email#...", "subject#...") -> user id: uniqueness
- todos        owner, uid (UUIDv7: newest first)  plus a GSI `by_state` (owner_state, uid)
- sessions     id                        plus a GSI `by_user` (user_id, id)
- refresh_tokens id; revoked_tokens jti; rate_limits key: each with a TTL attribute `expires`
- messages     board ("main": one board), id (UUIDv7: newest first)  plus a GSI `by_author`
               (author_id, id) to remove a deleted user's messages
- products     id                       plus a GSI `by_kind` (kind, id) for the listing
- service_credentials access_key_id     (few: listed with a Scan)
- signing_keys kid                       (few, one per key rotation: listed with a Scan)
- audit_events trail ("main": one trail), id (UUIDv7: newest first)  plus GSIs `by_subject`
               (subject_id, id), `by_kind` (kind, id) and `by_subject_kind` (subject_kind, id)
               for the filters; a TTL attribute `expires` ends each event's retention
- totp_factors user_id                  a user's TOTP factor, with its unused recovery
               codes' digests as a string set `codes`
- passkeys     credential_id            plus a GSI `by_user` (user_id, credential_id)

Uniqueness and every multi-item change use transactions with condition expressions; a
todo, message or second factor is only written while its owner exists (a ConditionCheck in
the same transaction), so none outlives a deleted user. Metadata is stored as its JSON text:
types come back exactly (no Decimal round trip), and the service bounds its size far below
the item limit.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from nimbus import aws
from nimbus.aws import AwsError
from nimbus.domain.errors import Unavailable
from nimbus.storage.dynamodb.audit import DynamoAuditStore
from nimbus.storage.dynamodb.credentials import DynamoCredentialStore
from nimbus.storage.dynamodb.factors import DynamoFactorStore
from nimbus.storage.dynamodb.items import epoch, number, string, timestamp, translated
from nimbus.storage.dynamodb.messages import DynamoMessageStore
from nimbus.storage.dynamodb.passkeys import DynamoPasskeyStore
from nimbus.storage.dynamodb.products import DynamoProductStore
from nimbus.storage.dynamodb.sessions import DynamoRateLimitStore, DynamoSessionStore
from nimbus.storage.dynamodb.signing_keys import DynamoSigningKeyStore
from nimbus.storage.dynamodb.todos import DynamoTodoStore
from nimbus.storage.dynamodb.users import DynamoUserStore


def open_url(url: str) -> "DynamoStorage":
    """dynamodb://?region=R&table_prefix=P[&endpoint_url=http://HOST:PORT]"""
    query = {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}
    unknown = set(query) - {"region", "table_prefix", "endpoint_url"}
    if unknown:
        raise ValueError(f"unknown dynamodb:// parameters: {', '.join(sorted(unknown))}")
    return DynamoStorage(
        region=query.get("region", "us-east-1"),
        table_prefix=query.get("table_prefix", "nimbus-"),
        endpoint_url=query.get("endpoint_url"),
    )


TTL_ATTRIBUTE = "expires"


class Tables:
    def __init__(self, prefix: str) -> None:
        self.users = f"{prefix}users"
        self.user_keys = f"{prefix}user_keys"
        self.todos = f"{prefix}todos"
        self.sessions = f"{prefix}sessions"
        self.refresh_tokens = f"{prefix}refresh_tokens"
        self.revoked_tokens = f"{prefix}revoked_tokens"
        self.rate_limits = f"{prefix}rate_limits"
        self.messages = f"{prefix}messages"
        self.products = f"{prefix}products"
        self.service_credentials = f"{prefix}service_credentials"
        self.signing_keys = f"{prefix}signing_keys"
        self.audit_events = f"{prefix}audit_events"
        self.totp_factors = f"{prefix}totp_factors"
        self.passkeys = f"{prefix}passkeys"

    def expiring(self) -> list[str]:
        """Tables whose items DynamoDB deletes once their TTL_ATTRIBUTE time has passed."""
        return [self.refresh_tokens, self.revoked_tokens, self.rate_limits, self.audit_events]

    def all(self) -> list[str]:
        return [
            self.users,
            self.user_keys,
            self.todos,
            self.sessions,
            self.refresh_tokens,
            self.revoked_tokens,
            self.rate_limits,
            self.messages,
            self.products,
            self.service_credentials,
            self.signing_keys,
            self.audit_events,
            self.totp_factors,
            self.passkeys,
        ]


class DynamoStorage:
    embedded = False
    inline_reads = False

    def __init__(self, *, region: str, table_prefix: str, endpoint_url: str | None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.tables = Tables(table_prefix)
        self._client: aws.JsonApi | None = None
        self.users = DynamoUserStore(self)
        self.todos = DynamoTodoStore(self)
        self.messages = DynamoMessageStore(self)
        self.products = DynamoProductStore(self)
        self.credentials = DynamoCredentialStore(self)
        self.signing_keys = DynamoSigningKeyStore(self)
        self.sessions = DynamoSessionStore(self)
        self.factors = DynamoFactorStore(self)
        self.passkeys = DynamoPasskeyStore(self)
        self.rate_limits = DynamoRateLimitStore(self)
        self.audit = DynamoAuditStore(self)

    @property
    def client(self) -> aws.JsonApi:
        if self._client is None:
            self._client = aws.dynamodb(self.region, self.endpoint_url)
        return self._client

    def create_schema(self) -> list[str]:
        """Create missing tables (and their TTLs); tables that exist are left as they are."""
        with translated():
            existing = set(self._existing_tables())
            for name, definition in self.table_definitions().items():
                if name in existing:
                    continue
                try:
                    self.client.call(
                        "CreateTable", TableName=name, BillingMode="PAY_PER_REQUEST", **definition
                    )
                except AwsError as exc:
                    if exc.code != "ResourceInUseException":  # another worker made it
                        raise
            for name in self.tables.all():
                self._wait_until_active(name)
            for name in self.tables.expiring():
                self.client.call(
                    "UpdateTimeToLive",
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                )
        return self.tables.all()

    def drop_schema(self) -> list[str]:
        with translated():
            existing = set(self._existing_tables())
            dropped = [name for name in self.tables.all() if name in existing]
            for name in dropped:
                self.client.call("DeleteTable", TableName=name)
        return dropped

    def ping(self) -> None:
        # A write, as the SQL stores' readiness checks make: throttled or refused writes
        # make the store unready.
        now = datetime.now(UTC)
        with translated():
            self.client.call(
                "PutItem",
                TableName=self.tables.rate_limits,
                Item={
                    "key": string("ready:probe"),
                    "window_start": timestamp(now),
                    "count": number(0),
                    "expires": epoch(now + timedelta(days=1)),
                },
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _existing_tables(self) -> Iterator[str]:
        for page in self.client.pages("ListTables"):
            yield from page["TableNames"]

    def _wait_until_active(self, name: str, *, attempts: int = 120) -> None:
        for _ in range(attempts):
            try:
                table = self.client.call("DescribeTable", TableName=name)["Table"]
            except AwsError as exc:
                if exc.code != "ResourceNotFoundException":  # not visible yet
                    raise
            else:
                if table.get("TableStatus") == "ACTIVE":
                    return
            time.sleep(0.5)
        raise Unavailable(f"DynamoDB table {name} did not become active")

    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """Keys and indexes per table, as CreateTable takes them (template.yaml mirrors them)."""
        t = self.tables
        return {
            t.users: _table(
                [("id", "S")],
                gsi=("by_kind", [("kind", "S"), ("id", "S")]),
                extra_attributes=(("kind", "S"),),
            ),
            t.user_keys: _table([("key", "S")]),
            t.todos: _table(
                [("owner", "S"), ("uid", "S")],
                gsi=("by_state", [("owner_state", "S"), ("uid", "S")]),
                extra_attributes=(("owner_state", "S"),),
            ),
            t.sessions: _table(
                [("id", "S")],
                gsi=("by_user", [("user_id", "S"), ("id", "S")]),
                extra_attributes=(("user_id", "S"),),
            ),
            t.refresh_tokens: _table([("id", "S")]),
            t.revoked_tokens: _table([("jti", "S")]),
            t.rate_limits: _table([("key", "S")]),
            t.messages: _table(
                [("board", "S"), ("id", "S")],
                gsi=("by_author", [("author_id", "S"), ("id", "S")]),
                extra_attributes=(("author_id", "S"),),
            ),
            t.products: _table(
                [("id", "S")],
                gsi=("by_kind", [("kind", "S"), ("id", "S")]),
                extra_attributes=(("kind", "S"),),
            ),
            t.service_credentials: _table([("access_key_id", "S")]),
            t.signing_keys: _table([("kid", "S")]),
            t.audit_events: _table(
                [("trail", "S"), ("id", "S")],
                gsi=[
                    ("by_subject", [("subject_id", "S"), ("id", "S")]),
                    ("by_kind", [("kind", "S"), ("id", "S")]),
                    ("by_subject_kind", [("subject_kind", "S"), ("id", "S")]),
                ],
                extra_attributes=(("subject_id", "S"), ("kind", "S"), ("subject_kind", "S")),
            ),
            t.totp_factors: _table([("user_id", "S")]),
            t.passkeys: _table(
                [("credential_id", "S")],
                gsi=("by_user", [("user_id", "S"), ("credential_id", "S")]),
                extra_attributes=(("user_id", "S"),),
            ),
        }


Index = tuple[str, list[tuple[str, str]]]


def _table(
    keys: list[tuple[str, str]],
    *,
    gsi: Index | list[Index] | None = None,
    extra_attributes: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    roles = ["HASH", "RANGE"]
    definition: dict[str, Any] = {
        "KeySchema": [{"AttributeName": n, "KeyType": roles[i]} for i, (n, _) in enumerate(keys)],
        "AttributeDefinitions": [
            {"AttributeName": n, "AttributeType": t} for n, t in [*keys, *extra_attributes]
        ],
    }
    indexes = [gsi] if isinstance(gsi, tuple) else gsi or []
    if indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": n, "KeyType": roles[i]} for i, (n, _) in enumerate(index_keys)
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, index_keys in indexes
        ]
    return definition
