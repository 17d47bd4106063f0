"""How a write that checks its owner reads DynamoDB's cancellation reasons. moto never cancels
a transaction for a conflict, so these answers come from a scripted server that does, as
DynamoDB does when another request writes the owner's item at the same moment."""

from collections.abc import Iterator

import pytest

from nimbus import aws
from nimbus.aws import AwsError
from nimbus.domain.errors import NotFound, Unavailable
from nimbus.storage.dynamodb import items
from tests.scripted_aws import Answer, ScriptedAws, error, scripted_aws


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nimbus.storage.dynamodb.items.time.sleep", lambda seconds: None)


@pytest.fixture
def server() -> Iterator[ScriptedAws]:
    with scripted_aws() as script:
        yield script


def cancelled(*reasons: str) -> Answer:
    return error(
        "TransactionCanceledException", CancellationReasons=[{"Code": code} for code in reasons]
    )


def _write(server: ScriptedAws) -> None:
    items.transact_for_owner(
        aws.dynamodb("us-east-1", server.url),
        items.owner_exists("users", "u1"),
        [{"Put": {"TableName": "todos", "Item": {}}}],
        owner_gone="The owner no longer exists",
    )


def test_a_conflict_with_another_write_is_tried_again(server: ScriptedAws) -> None:
    server.answers += [cancelled("TransactionConflict", "None"), Answer(200, {})]
    _write(server)
    assert len(server.received) == 2


def test_a_missing_owner_is_not_found_at_once(server: ScriptedAws) -> None:
    server.answers += [cancelled("ConditionalCheckFailed", "None")]
    with pytest.raises(NotFound, match="The owner no longer exists"):
        _write(server)
    assert len(server.received) == 1


def test_an_owner_that_stays_busy_is_unavailable(server: ScriptedAws) -> None:
    server.answers += [cancelled("TransactionConflict", "None")] * 4
    with pytest.raises(Unavailable):
        _write(server)
    assert len(server.received) == 4


def test_any_other_cancellation_is_not_hidden(server: ScriptedAws) -> None:
    server.answers += [cancelled("None", "ValidationError")]
    with pytest.raises(AwsError, match="TransactionCanceledException"):
        _write(server)


def test_a_batch_read_answered_in_parts_is_merged(server: ScriptedAws) -> None:
    # Under load DynamoDB answers part of a BatchGetItem and hands back the other keys.
    revoked = {"Keys": [{"jti": {"S": "j1"}}]}
    server.answers += [
        Answer(200, {"Responses": {"revoked": [{"jti": {"S": "j1"}}]},
                     "UnprocessedKeys": {"sessions": {"Keys": [{"id": {"S": "s1"}}]}}}),
        Answer(200, {"Responses": {"sessions": [{"id": {"S": "s1"}}]}}),
    ]  # fmt: skip
    found = items.read_batch(
        aws.dynamodb("us-east-1", server.url),
        {"revoked": revoked, "sessions": {"Keys": [{"id": {"S": "s1"}}]}},
    )
    assert found == {"revoked": [{"jti": {"S": "j1"}}], "sessions": [{"id": {"S": "s1"}}]}
    assert server.received[1].params["RequestItems"] == {
        "sessions": {"Keys": [{"id": {"S": "s1"}}]}
    }
