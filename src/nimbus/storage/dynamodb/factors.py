"""Second factors: one item per user holding the TOTP factor and, as a string set, the
digests of its unused recovery codes, so that every change is one conditional write."""

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nimbus.aws import AwsError
from nimbus.domain.errors import Conflict
from nimbus.domain.mfa import TotpFactor
from nimbus.storage.dynamodb.items import (
    Item,
    cancel_reasons,
    number,
    owner_exists,
    read_required_time,
    read_time,
    string,
    timestamp,
    transact_for_owner,
    translated,
)

if TYPE_CHECKING:
    from nimbus.storage.dynamodb import DynamoStorage

CONFIRMED_EXISTS = "The account has a second factor already"
# confirmed_at holds a time (type S) once confirmed, NULL while pending.
PENDING = "attribute_type(confirmed_at, :null)"
CONFIRMED = "attribute_type(confirmed_at, :s)"
TYPES = {":null": string("NULL"), ":s": string("S")}


class DynamoFactorStore:
    def __init__(self, db: "DynamoStorage") -> None:
        self._db = db

    def begin(self, factor: TotpFactor) -> None:
        t = self._db.tables
        # A Put leaves no codes behind: a replaced pending factor's stale ones go with it.
        put = {
            "Put": {
                "TableName": t.totp_factors,
                "Item": {
                    "user_id": string(factor.user_id),
                    "sealed_secret": string(factor.sealed_secret),
                    "created_at": timestamp(factor.created_at),
                    "confirmed_at": timestamp(None),
                    "last_step": number(factor.last_step),
                },
                "ConditionExpression": f"attribute_not_exists(user_id) OR {PENDING}",
                "ExpressionAttributeValues": {":null": TYPES[":null"]},
            }
        }
        with translated():
            try:
                transact_for_owner(
                    self._db.client,
                    owner_exists(t.users, factor.user_id),
                    [put],
                    owner_gone="The owner no longer exists",
                )
            except AwsError as exc:
                if exc.code == "TransactionCanceledException" and cancel_reasons(exc)[1:2] == [
                    "ConditionalCheckFailed"
                ]:
                    raise Conflict(CONFIRMED_EXISTS) from exc
                raise

    def get(self, user_id: str) -> TotpFactor | None:
        with translated():
            item = self._db.client.call(
                "GetItem",
                TableName=self._db.tables.totp_factors,
                Key={"user_id": string(user_id)},
                ConsistentRead=True,
            ).get("Item")
        return _factor(item) if item is not None else None

    def confirm(
        self,
        user_id: str,
        sealed_secret: str,
        *,
        step: int,
        recovery_codes: Sequence[str],
        at: datetime,
    ) -> bool:
        digests = list(dict.fromkeys(recovery_codes))  # a string set refuses duplicates
        values: dict[str, Any] = {
            ":at": timestamp(at),
            ":step": number(step),
            ":secret": string(sealed_secret),
            ":null": TYPES[":null"],
        }
        expression = "SET confirmed_at = :at, last_step = :step"
        if digests:
            expression += ", codes = :codes"
            values[":codes"] = {"SS": digests}
        else:
            expression += " REMOVE codes"  # a set cannot be empty
        return self._update(
            user_id,
            UpdateExpression=expression,
            ConditionExpression=f"sealed_secret = :secret AND {PENDING}",
            ExpressionAttributeValues=values,
        )

    def use_step(self, user_id: str, step: int) -> bool:
        # A missing item has no last_step, so the comparison fails and nothing is written.
        return self._update(
            user_id,
            UpdateExpression="SET last_step = :step",
            ConditionExpression=f"last_step < :step AND {CONFIRMED}",
            ExpressionAttributeValues={":step": number(step), ":s": TYPES[":s"]},
        )

    def use_recovery_code(self, user_id: str, digest: str) -> bool:
        return self._update(
            user_id,
            UpdateExpression="DELETE codes :code",
            ConditionExpression=f"contains(codes, :digest) AND {CONFIRMED}",
            ExpressionAttributeValues={
                ":code": {"SS": [digest]},
                ":digest": string(digest),
                ":s": TYPES[":s"],
            },
        )

    def remove(self, user_id: str) -> bool:
        with translated():
            old = self._db.client.call(
                "DeleteItem",
                TableName=self._db.tables.totp_factors,
                Key={"user_id": string(user_id)},
                ReturnValues="ALL_OLD",
            ).get("Attributes")
        return bool(old)

    def _update(self, user_id: str, **request: Any) -> bool:
        """One conditional UpdateItem; False if its condition failed."""
        with translated():
            try:
                self._db.client.call(
                    "UpdateItem",
                    TableName=self._db.tables.totp_factors,
                    Key={"user_id": string(user_id)},
                    **request,
                )
            except AwsError as exc:
                if exc.code == "ConditionalCheckFailedException":
                    return False
                raise
        return True


def _factor(item: Item) -> TotpFactor:
    return TotpFactor(
        user_id=item["user_id"]["S"],
        sealed_secret=item["sealed_secret"]["S"],
        created_at=read_required_time(item, "created_at"),
        confirmed_at=read_time(item, "confirmed_at"),
        last_step=int(item["last_step"]["N"]),
        recovery_codes_left=len(item.get("codes", {}).get("SS", [])),
    )
