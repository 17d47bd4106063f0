"""nimbus.aws over HTTP: what it sends (signed as botocore signs), and how it takes AWS's answers,
errors and failures, from a scripted server on 127.0.0.1."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from nimbus import aws
from nimbus.aws import AwsError, AwsUnreachable
from tests.scripted_aws import Answer, ScriptedAws, error, scripted_aws
from tests.support import free_port

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setattr("nimbus.aws.time.sleep", lambda seconds: None)


@pytest.fixture
def server() -> Iterator[ScriptedAws]:
    with scripted_aws() as script:
        yield script


def _client(server: ScriptedAws) -> aws.JsonApi:
    return aws.dynamodb("eu-west-1", server.url)


def _botocore_authorization(
    server: ScriptedAws, headers: dict[str, str], body: bytes, token: str | None = None
) -> str:
    """What botocore's signer writes for the same request at the same moment."""
    signer = SigV4Auth(BotocoreCredentials(KEY_ID, SECRET, token), "dynamodb", "eu-west-1")
    request = AWSRequest(
        method="POST",
        url=f"{server.url}/",
        data=body,
        headers={
            "X-Amz-Target": headers["x-amz-target"],
            "Content-Type": headers["content-type"],
        },
    )
    moment = datetime.strptime(headers["x-amz-date"], "%Y%m%dT%H%M%SZ")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda *a, **k: moment)
        signer.add_auth(request)
    return str(request.headers["Authorization"])


def test_a_call_posts_the_operation_signed_as_botocore_signs_it(server: ScriptedAws) -> None:
    server.answers.append(Answer(200, {"Item": {"id": {"S": "1"}}}))
    answer = _client(server).call("GetItem", TableName="users", Key={"id": {"S": "1"}})
    assert answer == {"Item": {"id": {"S": "1"}}}
    [sent] = server.received
    assert sent.target == "DynamoDB_20120810.GetItem"
    assert sent.headers["content-type"] == "application/x-amz-json-1.0"
    assert sent.params == {"TableName": "users", "Key": {"id": {"S": "1"}}}
    assert sent.headers["authorization"] == _botocore_authorization(server, sent.headers, sent.body)


def test_a_session_token_is_sent_and_signed(
    server: ScriptedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    server.answers.append(Answer(200, {}))
    _client(server).call("DescribeTable", TableName="users")
    [sent] = server.received
    assert sent.headers["x-amz-security-token"] == "session-token"
    assert "x-amz-security-token" in sent.headers["authorization"]
    assert sent.headers["authorization"] == _botocore_authorization(
        server, sent.headers, sent.body, token="session-token"
    )


def test_an_error_answer_keeps_its_code_message_and_body(server: ScriptedAws) -> None:
    reasons = [{"Code": "None"}, {"Code": "ConditionalCheckFailed"}]
    server.answers.append(
        error("TransactionCanceledException", message="cancelled", CancellationReasons=reasons)
    )
    with pytest.raises(AwsError) as caught:
        _client(server).call("TransactWriteItems", TransactItems=[])
    assert caught.value.code == "TransactionCanceledException"
    assert caught.value.message == "cancelled"
    assert caught.value.body["CancellationReasons"] == reasons
    assert len(server.received) == 1  # a refusal is not tried again


def test_a_server_error_is_tried_again(server: ScriptedAws) -> None:
    server.answers += [Answer(500, {}), error("ThrottlingException"), Answer(200, {"ok": 1})]
    assert _client(server).call("GetItem") == {"ok": 1}
    assert len(server.received) == 3


def test_throttling_that_lasts_gives_up_after_three_attempts(server: ScriptedAws) -> None:
    server.answers += [error("ProvisionedThroughputExceededException")] * 4
    with pytest.raises(AwsError, match="ProvisionedThroughputExceededException"):
        _client(server).call("GetItem")
    assert len(server.received) == aws.ATTEMPTS


def test_a_damaged_answer_is_not_believed(server: ScriptedAws) -> None:
    server.answers += [Answer(200, {"Item": {}}, crc32=1), Answer(200, {"Item": {"a": {"N": "1"}}})]
    assert _client(server).call("GetItem") == {"Item": {"a": {"N": "1"}}}
    assert len(server.received) == 2


def test_retries_stop_when_the_call_has_used_its_time(server: ScriptedAws) -> None:
    # Each answer comes after the read timeout: a third attempt would end past the budget.
    server.answers += [Answer(200, {}, delay=1.0)] * 3
    client = aws.JsonApi(
        "dynamodb",
        region="eu-west-1",
        target_prefix="DynamoDB_20120810",
        json_version="1.0",
        endpoint_url=server.url,
        read_timeout=0.3,
        call_timeout=0.5,
    )
    with pytest.raises(AwsUnreachable, match="timed out"):
        client.call("GetItem")
    assert 1 <= len(server.received) <= 2


def test_pages_follow_the_continuation_key(server: ScriptedAws) -> None:
    server.answers += [
        Answer(200, {"Items": [1], "LastEvaluatedKey": {"id": {"S": "1"}}}),
        Answer(200, {"Items": [2]}),
    ]
    pages = list(_client(server).pages("Query", TableName="todos"))
    assert [page["Items"] for page in pages] == [[1], [2]]
    assert "ExclusiveStartKey" not in server.received[0].params
    assert server.received[1].params["ExclusiveStartKey"] == {"id": {"S": "1"}}


def test_no_server_is_unreachable() -> None:
    client = aws.JsonApi(
        "dynamodb",
        region="eu-west-1",
        target_prefix="DynamoDB_20120810",
        json_version="1.0",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    with pytest.raises(AwsUnreachable):
        client.call("GetItem")


def test_endpoints_follow_aws_and_its_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_SSM", raising=False)
    assert aws.ssm("eu-west-1").url == "https://ssm.eu-west-1.amazonaws.com"
    assert aws.dynamodb("cn-north-1").url == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert aws.ssm("eu-west-1").url == "http://127.0.0.1:1"
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:2")
    assert aws.ssm("eu-west-1").url == "http://127.0.0.1:2"
    assert aws.dynamodb("eu-west-1", "http://127.0.0.1:3").url == "http://127.0.0.1:3"


def test_without_keys_in_the_environment_a_profile_signs(
    server: ScriptedAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    profiles = tmp_path / "credentials"
    profiles.write_text(
        f"[nimbus]\naws_access_key_id = PROFILEKEY\naws_secret_access_key = {SECRET}\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "nimbus")
    aws._botocore_credentials.cache_clear()
    try:
        server.answers.append(Answer(200, {}))
        _client(server).call("DescribeTable", TableName="users")
    finally:
        aws._botocore_credentials.cache_clear()
    assert "Credential=PROFILEKEY/" in server.received[0].headers["authorization"]


def test_no_credentials_anywhere_is_unreachable(
    server: ScriptedAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    aws._botocore_credentials.cache_clear()
    try:
        with pytest.raises(AwsUnreachable, match="no AWS credentials"):
            _client(server).call("GetItem")
    finally:
        aws._botocore_credentials.cache_clear()
    assert server.received == []


def test_a_transaction_keeps_one_request_token_over_its_retries(server: ScriptedAws) -> None:
    # Its first answer lost: DynamoDB tells the retry apart from a new transaction by the token.
    server.answers += [Answer(500, {}), Answer(200, {}), Answer(200, {})]
    client = _client(server)
    client.call("TransactWriteItems", TransactItems=[])
    client.call("TransactWriteItems", TransactItems=[])
    first, retry, other = (sent.params["ClientRequestToken"] for sent in server.received)
    assert first == retry
    assert other != first


def test_a_broken_profile_is_unreachable_not_a_crash(
    server: ScriptedAws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    aws._botocore_credentials.cache_clear()
    try:
        with pytest.raises(AwsUnreachable, match="AWS credentials"):
            _client(server).call("GetItem")
    finally:
        aws._botocore_credentials.cache_clear()


def test_requests_go_through_the_configured_proxy(
    server: ScriptedAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The scripted server stands in for the proxy: an HTTP proxy gets the absolute URL.
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    server.answers.append(Answer(200, {"Table": {}}))
    client = aws.dynamodb("eu-west-1", "http://dynamodb.internal.example:8000")
    assert client.call("DescribeTable", TableName="users") == {"Table": {}}
    [sent] = server.received
    assert sent.headers["host"] == "dynamodb.internal.example:8000"


def test_no_proxy_is_honoured(server: ScriptedAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server.answers.append(Answer(200, {}))
    assert _client(server).call("DescribeTable", TableName="users") == {}
