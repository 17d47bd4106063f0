"""An HTTP server on 127.0.0.1 that answers AWS JSON API calls from a script, for the failures
a real DynamoDB-API server will not produce on demand (5xx, throttling, damaged answers,
transactions cancelled by a conflict). It keeps connections alive, as AWS does, and can
serve TLS."""

import json
import ssl
import sys
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    crc32: int | None = None  # the checksum to send; the body's own when None
    delay: float = 0  # seconds before answering
    # Close the connection after answering without saying so, as a server's idle timeout does.
    drop: bool = False


def error(code: str, status: int = 400, **extra: Any) -> Answer:
    return Answer(status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", **extra})


@dataclass
class Received:
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    peer: tuple[str, int]  # the client's address: one per connection

    @property
    def params(self) -> Any:
        return json.loads(self.body)


@dataclass
class ScriptedAws:
    url: str
    answers: list[Answer]
    received: list[Received]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a late answer (a test of timeouts) is no failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def scripted_aws(tls: ssl.SSLContext | None = None) -> Iterator[ScriptedAws]:
    """Answers requests from `answers` in order; a request with none left gets a 500. With
    `tls`, over TLS with that context's certificate."""
    script = ScriptedAws(url="", answers=[], received=[])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # an idle connection's thread ends

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            script.received.append(
                Received(
                    self.headers.get("X-Amz-Target", ""),
                    {name.lower(): value for name, value in self.headers.items()},
                    body,
                    self.client_address,
                )
            )
            answer = script.answers.pop(0) if script.answers else Answer(500, {})
            threading.Event().wait(answer.delay)  # not time.sleep: tests stub that out
            data = json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            crc = zlib.crc32(data) if answer.crc32 is None else answer.crc32
            self.send_header("x-amz-crc32", str(crc))
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = answer.drop

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    script.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
