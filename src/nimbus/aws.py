"""A small client for the AWS JSON APIs nimbus calls (DynamoDB and SSM), over http.client
(nimbus.connections) and nimbus's own SigV4 signer.

botocore does the same for every AWS API; for the dozen operations nimbus uses, its import,
service data and client building were a third of a Lambda cold start. The JSON protocol needs
none of that: a POST of the request's JSON to `/` with the operation in `X-Amz-Target`.

Failures are retried as botocore's standard mode does (3 attempts, backoff with jitter) when
they are transient: no connection, a timeout, a 5xx, throttling, a damaged answer. As
botocore, a TransactWriteItems call carries one ClientRequestToken over all its attempts, so
a retry of a transaction that was applied (its answer lost) is not applied twice.
Credentials come from the environment, as Lambda gives them; without them (profiles, SSO,
container and instance roles) botocore's resolver is asked, if it is installed. HTTPS_PROXY /
NO_PROXY and AWS_CA_BUNDLE are honoured as botocore honours them.
"""

import functools
import json
import os
import random
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from nimbus.connections import CannotConnect, Endpoint, NoAnswer
from nimbus.security import sigv4
from nimbus.values import frozen

ATTEMPTS = 3
_BACKOFF_BASE = 0.1
_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "LimitExceededException",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
# Where each paged operation puts the key of its next page, and where the next call takes it.
_PAGE_TOKENS = {
    "Query": ("LastEvaluatedKey", "ExclusiveStartKey"),
    "Scan": ("LastEvaluatedKey", "ExclusiveStartKey"),
    "ListTables": ("LastEvaluatedTableName", "ExclusiveStartTableName"),
}


class AwsError(Exception):
    """An AWS API answered with an error; `body` is the whole answer (for DynamoDB it may
    carry `CancellationReasons`, or the `Item` a failed condition found)."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        # "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
        self.code = str(body.get("__type", f"HTTP{status}")).rpartition("#")[2]
        self.message = str(body.get("message") or body.get("Message") or "")
        super().__init__(f"{self.code}: {self.message}" if self.message else self.code)


class AwsUnreachable(Exception):
    """No usable answer: no connection, a timeout, no credentials, or only transient errors."""


@frozen
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


class JsonApi:
    """One AWS service in one region. Thread-safe: its Endpoint pools the connections."""

    def __init__(
        self,
        service: str,
        *,
        region: str,
        target_prefix: str,
        json_version: str,
        endpoint_url: str | None = None,
        connect_timeout: float = 2,
        read_timeout: float = 3,
        call_timeout: float = 4.5,
    ) -> None:
        self.service = service
        self.region = region
        self.url = endpoint_url or _endpoint(service, region)
        parts = urlsplit(self.url)
        self._host = parts.netloc
        self._path = parts.path or "/"
        self._target_prefix = target_prefix
        self._content_type = f"application/x-amz-json-{json_version}"
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        # All attempts of a call together, so that an outage is a 503 well within the Lambda
        # function's timeout (10 s) rather than API Gateway's 504.
        self._call_timeout = call_timeout
        self._endpoint = endpoint(self.url, size=16)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        if operation == "TransactWriteItems":
            params.setdefault("ClientRequestToken", str(uuid.uuid4()))
        body = json.dumps(params, separators=(",", ":")).encode()
        deadline = time.monotonic() + self._call_timeout
        for attempt in range(ATTEMPTS):
            try:
                return self._send(operation, body, deadline - time.monotonic())
            except AwsError as exc:
                if not transient(exc):
                    raise
                failure: Exception = exc
            except AwsUnreachable as exc:
                failure = exc
            pause = random.uniform(0, _BACKOFF_BASE * 2**attempt)  # noqa: S311 (jitter)
            if attempt + 1 == ATTEMPTS or time.monotonic() + pause >= deadline:
                raise failure
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(self, operation: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every page of a paged operation, following its continuation key."""
        next_key, start_key = _PAGE_TOKENS[operation]
        while True:
            page = self.call(operation, **params)
            yield page
            if not page.get(next_key):
                return
            params[start_key] = page[next_key]

    def close(self) -> None:
        self._endpoint.close()

    def _send(self, operation: str, body: bytes, time_left: float) -> dict[str, Any]:
        credentials = _credentials()
        timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "host": self._host,
            "x-amz-date": timestamp,
            "x-amz-target": f"{self._target_prefix}.{operation}",
            "content-type": self._content_type,
        }
        if credentials.session_token:
            headers["x-amz-security-token"] = credentials.session_token
        headers["authorization"] = sigv4.authorization(
            sigv4.SignedRequest("POST", self._path, "", list(headers.items()), body),
            access_key_id=credentials.access_key_id,
            secret=credentials.secret_access_key,
            region=self.region,
            service=self.service,
            timestamp=timestamp,
        )
        time_left = max(time_left, 0.01)
        try:
            response = self._endpoint.post(
                self._path,
                body,
                headers,
                connect_timeout=min(self._connect_timeout, time_left),
                read_timeout=min(self._read_timeout, time_left),
            )
        except (CannotConnect, NoAnswer) as exc:
            raise AwsUnreachable(f"{self.service} at {self._host}: {exc}") from exc
        data = response.data
        checksum = response.headers.get("x-amz-crc32")
        if checksum is not None and checksum != str(zlib.crc32(data)):
            raise AwsUnreachable(f"{self.service}: the answer was damaged in transit")
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise AwsError(response.status, {"message": f"not a JSON answer: {data[:200]!r}"})
        if response.status >= 300:
            raise AwsError(response.status, answer)
        return answer


def dynamodb(region: str, endpoint_url: str | None = None) -> JsonApi:
    return JsonApi(
        "dynamodb",
        region=region,
        target_prefix="DynamoDB_20120810",
        json_version="1.0",
        endpoint_url=endpoint_url,
    )


def ssm(region: str) -> JsonApi:
    return JsonApi("ssm", region=region, target_prefix="AmazonSSM", json_version="1.1")


def transient(exc: AwsError) -> bool:
    """A failure that may pass: worth another attempt, and a 503 once attempts run out."""
    return exc.status >= 500 or exc.code in _RETRYABLE_CODES


def endpoint(url: str, *, size: int) -> Endpoint:
    """Connections to an AWS endpoint, trusting AWS_CA_BUNDLE as botocore does."""
    return Endpoint(url, size=size, ca_bundle=os.environ.get("AWS_CA_BUNDLE") or None)


def _endpoint(service: str, region: str) -> str:
    # As botocore: a service's own endpoint variable, then the general one, then AWS's.
    configured = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or os.environ.get(
        "AWS_ENDPOINT_URL"
    )
    if configured:
        return configured
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{service}.{region}.{domain}"


def _credentials() -> Credentials:
    """Read for every request: credentials from a role expire and are renewed."""
    key_id = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key_id and secret:
        return Credentials(key_id, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    try:
        resolved = _botocore_credentials()
        frozen = resolved.get_frozen_credentials() if resolved is not None else None
    except Exception as exc:  # botocore's: a missing profile, an expired SSO login, ...
        # Not chained: the resolver's own causes may quote a credentials file or a process's
        # output, secrets included; its message is kept.
        raise AwsUnreachable(f"AWS credentials: {exc}") from None
    if frozen is None:
        raise AwsUnreachable("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    return Credentials(frozen.access_key, frozen.secret_key, frozen.token)


@functools.cache
def _botocore_credentials() -> Any:
    try:
        from botocore.session import get_session
    except ImportError:
        return None
    return get_session().get_credentials()
