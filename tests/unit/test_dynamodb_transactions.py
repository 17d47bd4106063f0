"""How a write that checks its owner reads DynamoDB's cancellation reasons. moto never cancels
a transaction for a conflict, so these answers come from a client that does, as DynamoDB does
when another request writes the owner's item at the same moment."""

from typing import Any

import pytest
from botocore.exceptions import ClientError

from nimbus.domain.errors import NotFound, Unavailable
from nimbus.storage.dynamodb import items


class CancellingClient:
    def __init__(self, *answers: list[str] | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    def transact_write_items(self, TransactItems: list[Any]) -> dict[str, Any]:
        self.calls += 1
        reasons = self.answers.pop(0)
        if reasons is None:
            return {}
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": code} for code in reasons],
            },
            "TransactWriteItems",
        )


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nimbus.storage.dynamodb.items.time.sleep", lambda seconds: None)


def _write(client: CancellingClient) -> None:
    items.transact_for_owner(
        client,  # type: ignore[arg-type]
        items.owner_exists("users", "u1"),
        [{"Put": {"TableName": "todos", "Item": {}}}],
        owner_gone="The owner no longer exists",
    )


def test_a_conflict_with_another_write_is_tried_again() -> None:
    client = CancellingClient(["TransactionConflict", "None"], None)
    _write(client)
    assert client.calls == 2


def test_a_missing_owner_is_not_found_at_once() -> None:
    client = CancellingClient(["ConditionalCheckFailed", "None"])
    with pytest.raises(NotFound, match="The owner no longer exists"):
        _write(client)
    assert client.calls == 1


def test_an_owner_that_stays_busy_is_unavailable() -> None:
    client = CancellingClient(*[["TransactionConflict", "None"]] * 4)
    with pytest.raises(Unavailable):
        _write(client)
    assert client.calls == 4


def test_any_other_cancellation_is_not_hidden() -> None:
    client = CancellingClient(["None", "ValidationError"])
    with pytest.raises(ClientError):
        _write(client)
