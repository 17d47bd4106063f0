"""ASGI middleware that must see a request before routing does."""

from collections.abc import Sequence
from ipaddress import ip_address, ip_network

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The raw path before StripTrailingSlash changed it: a SigV4 signature covers what was sent.
ORIGINAL_RAW_PATH = "nimbus.original_raw_path"


class StripTrailingSlash:
    """Route `/todos/` as `/todos`: HTTPie and curl do not follow redirects by default."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            # The path holds the root path (a stage) in front: "/prod/" is the route "/".
            route = path.removeprefix(scope.get("root_path", ""))
            if len(route) > 1 and route.endswith("/"):
                # Changed in place, as the router itself does: the access log reads the route
                # the router sets in it.
                scope["path"] = path.rstrip("/") or "/"
                raw: bytes | None = scope.get("raw_path")
                scope[ORIGINAL_RAW_PATH] = raw
                if raw:
                    scope["raw_path"] = raw.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


# Far above any header nimbus reads (a JWT, a SigV4 Authorization, cookies), below what it
# would be costly to parse: API Gateway itself refuses a request with over 10 KB of headers.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024


# On every answer: no browser may take a JSON body for a script or a page.
NOSNIFF = (b"x-content-type-options", b"nosniff")


class LimitRequest:
    """431 for a header over MAX_HEADER_BYTES (or all of them over MAX_HEADERS_BYTES), and 413
    for a body over `max_bytes`, declared or streamed, before any handler parses either; and
    `X-Content-Type-Options: nosniff` on every answer."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sizes = [len(name) + len(value) for name, value in scope["headers"]]
        total = sum(sizes)
        # No single header can be over the bound unless all of them together are.
        if total > MAX_HEADER_BYTES and (
            total > MAX_HEADERS_BYTES or max(sizes) > MAX_HEADER_BYTES
        ):
            response = JSONResponse(
                {
                    "message": f"A request header is over {MAX_HEADER_BYTES} bytes, or all of"
                    f" them together over {MAX_HEADERS_BYTES}",
                    "code": "headers_too_large",
                },
                431,
            )
            await response(scope, receive, send)
            return
        message = f"The request body is larger than {self.max_bytes} bytes"
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and _over(declared, self.max_bytes):
            response = JSONResponse({"message": message, "code": "payload_too_large"}, 413)
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.max_bytes:
                    # An HTTPException passes FastAPI's body parsing and reaches the error table.
                    raise HTTPException(413, message)
            return event

        async def sniffless(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), NOSNIFF]
            await send(message)

        await self.app(scope, limited, sniffless)


def _over(declared: str, limit: int) -> bool:
    # A number too long to be a size is over any limit, and is never turned into an int.
    if not (declared.isascii() and declared.isdigit()):
        return False
    return len(declared) > 18 or int(declared) > limit


class ClientAddress:
    """The client's address from `Forwarded` or `X-Forwarded-For`, honoured only when the
    peer is one of the trusted proxies (NIMBUS_FORWARDED_ALLOW_IPS), never otherwise.

    The list is read from the nearest hop back: the first address that is not a trusted
    proxy is the client, so an address a client writes into the header itself is never
    believed while a trusted proxy has appended the real one after it.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[str]) -> None:
        self.app = app
        self._everyone = "*" in trusted
        self._networks = [ip_network(entry, strict=False) for entry in trusted if entry != "*"]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = scope.get("client")
        if scope["type"] in ("http", "websocket") and peer and self._trusted(peer[0]):
            headers = Headers(scope=scope)
            hops, proto = _forwarded(headers.get("forwarded"))
            if not hops:
                hops = [hop.strip() for hop in headers.get("x-forwarded-for", "").split(",")]
                proto = headers.get("x-forwarded-proto")
            client = peer[0]
            for hop in reversed(hops[-_MAX_HOPS:]):
                address = _address(hop)
                if address is None:
                    break  # not an address: keep the last hop that gave one
                client = address
                if not self._trusted(address):
                    break
            # Changed in place, as the router does: the error handlers read the route it sets.
            scope["client"] = (client, 0)
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)

    def _trusted(self, host: str) -> bool:
        if self._everyone:
            return True
        try:
            address = ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)


_MAX_HOPS = 20


def _forwarded(value: str | None) -> tuple[list[str], str | None]:
    """The `for` of each element of an RFC 7239 Forwarded header, and the last `proto`."""
    hops: list[str] = []
    proto = None
    for element in (value or "").split(",")[-_MAX_HOPS:]:
        for pair in element.split(";"):
            name, _, raw = pair.partition("=")
            name, raw = name.strip().lower(), raw.strip().strip('"')
            if name == "for":
                hops.append(raw)
            elif name == "proto":
                proto = raw.lower()
    return hops, proto


def _address(hop: str) -> str | None:
    """The IP address in a hop ("1.2.3.4", "1.2.3.4:80", "[2001:db8::1]:80"), else None."""
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    try:
        return str(ip_address(hop))
    except ValueError:
        return None
