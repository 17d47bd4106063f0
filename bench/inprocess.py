"""Requests to the ASGI app in this process, as uvicorn would hand them over: for benchmarks
that count what nimbus itself does, without a server or a client around it."""

from collections.abc import MutableMapping
from typing import Any

HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench/1"),
           (b"content-type", b"application/json")]  # fmt: skip


async def call(
    app: Any, method: str, path: str, body: bytes = b"", token: str = "", query: bytes = b""
) -> dict[str, Any]:
    """The answer's status and body."""
    headers = list(HEADERS)
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query, "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        else:
            answer["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return answer
