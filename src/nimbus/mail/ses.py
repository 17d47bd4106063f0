"""Mail through Amazon SES v2 (SendEmail), over http.client and nimbus's own SigV4 signer: no
botocore, so no cold start spent importing it on Lambda.

The mail goes as Raw content, the same MIME bytes SMTP would send. Credentials come as
nimbus.aws takes them (the environment, which Lambda fills; else botocore's chain when it is
installed). A connection that could not be opened and a throttled call are tried again within
the bound; an answer that never came is not (SES may have sent the mail).
"""

import base64
import json
import os
import random
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from nimbus import aws
from nimbus.connections import CannotConnect, NoAnswer, Response
from nimbus.mail import mime
from nimbus.mail.bound import within
from nimbus.mail.message import MailError, Message, Sender
from nimbus.mail.urls import SesUrl
from nimbus.security import sigv4

SERVICE = "ses"  # SES v2 signs as "ses", and lives at email.<region>.amazonaws.com
PATH = "/v2/email/outbound-emails"
ATTEMPTS = 3
_THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling"})


class SesMailer:
    def __init__(self, url: SesUrl, *, sender: Sender, timeout: float, region: str) -> None:
        self._region = url.region or region
        self._url = url.endpoint_url or _endpoint(self._region)
        parts = urlsplit(self._url)
        self._host = parts.netloc
        self._path = parts.path.rstrip("/") + PATH
        self._configuration_set = url.configuration_set
        self._sender = sender
        self._timeout = timeout
        self._where = f"SES {self._region}"
        self._endpoint = aws.endpoint(self._url, size=4)

    def send(self, message: Message) -> None:
        raw = mime.as_bytes(mime.build(message, self._sender))
        request: dict[str, Any] = {
            "FromEmailAddress": self._sender.address,
            "Destination": {"ToAddresses": [message.to]},
            "Content": {"Raw": {"Data": base64.b64encode(raw).decode()}},
        }
        if self._configuration_set is not None:
            request["ConfigurationSetName"] = self._configuration_set
        body = json.dumps(request, separators=(",", ":")).encode()
        deadline = time.monotonic() + self._timeout
        within(self._timeout, self._where, lambda: self._call(body, deadline, message))

    def close(self) -> None:
        self._endpoint.close()

    def _call(self, body: bytes, deadline: float, message: Message) -> None:
        for attempt in range(ATTEMPTS):
            retry = self._attempt(body, deadline - time.monotonic(), message)
            if retry is None:
                return
            pause = random.uniform(0, 0.1 * 2**attempt)  # noqa: S311 (jitter)
            if attempt + 1 == ATTEMPTS or time.monotonic() + pause >= deadline:
                raise retry
            time.sleep(pause)

    def _attempt(self, body: bytes, time_left: float, message: Message) -> MailError | None:
        """None once SES took the mail; a MailError worth another attempt; raises the rest."""
        try:
            credentials = aws._credentials()
        except aws.AwsUnreachable as exc:
            raise MailError(f"{self._where}: {exc}") from None
        timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "host": self._host,
            "x-amz-date": timestamp,
            "content-type": "application/json",
        }
        if credentials.session_token:
            headers["x-amz-security-token"] = credentials.session_token
        headers["authorization"] = sigv4.authorization(
            sigv4.SignedRequest("POST", self._path, "", list(headers.items()), body),
            access_key_id=credentials.access_key_id,
            secret=credentials.secret_access_key,
            region=self._region,
            service=SERVICE,
            timestamp=timestamp,
        )
        time_left = max(time_left, 0.01)
        try:
            response = self._endpoint.post(
                self._path, body, headers, connect_timeout=time_left, read_timeout=time_left
            )
        except CannotConnect as exc:  # never sent: try again
            return MailError(f"{self._where}: cannot connect to {self._host}: {exc}")
        except NoAnswer as exc:
            raise MailError(f"{self._where}: {exc}") from None
        if response.status < 300:
            return None
        code, text = _error(response)
        failure = MailError(
            f"{self._where}: {response.status} {code}: {text}".replace(
                message.to, f"<...@{message.domain}>"
            )[:300]
        )
        if response.status == 429 or code in _THROTTLED:
            return failure
        raise failure


def _endpoint(region: str) -> str:
    # As botocore reads them: SES v2's own endpoint variable, then the general one.
    configured = os.environ.get("AWS_ENDPOINT_URL_SESV2") or os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://email.{region}.{domain}"


def _error(response: Response) -> tuple[str, str]:
    """The error's code and message: REST-JSON puts the code in X-Amzn-ErrorType (or the
    body's __type / code) and the message in the body."""
    try:
        answer = json.loads(response.data) if response.data else {}
    except ValueError:
        answer = {}
    if not isinstance(answer, dict):
        answer = {}
    code = str(
        response.headers.get("x-amzn-errortype")
        or answer.get("__type")
        or answer.get("code")
        or answer.get("Code")
        or "Error"
    )
    code = code.partition(":")[0].rpartition("#")[2]
    text = answer.get("message") or answer.get("Message") or ""
    return code, " ".join(str(text).split())
