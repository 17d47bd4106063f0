"""HTTP details shared by the resource routes: paging links and conditional requests."""

from typing import Annotated, Any, Protocol, TypeVar
from urllib.parse import quote

from fastapi import Header, Query, Request, Response

from nimbus.api.errors import ERROR_JSON
from nimbus.api.openapi import headers
from nimbus.domain.errors import PreconditionFailed

MAX_PAGE = 100
UNRESERVED = "-_.~"  # with letters and digits, what RFC 3986 (and SigV4) never escapes


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page")]
Cursor = Annotated[str | None, Query(max_length=512, description="From the previous Link")]
IfMatch = Annotated[
    str | None,
    Header(description='A version from an earlier ETag, or "*"; a stale one gets 412'),
]
CONDITIONAL: dict[int | str, dict[str, Any]] = {412: {"content": ERROR_JSON}}
# The headers of a versioned resource's answer, and of a page of a list.
VERSIONED: dict[int | str, dict[str, Any]] = {200: {"headers": headers("ETag")}}
CREATED: dict[int | str, dict[str, Any]] = {201: {"headers": headers("ETag")}}
PAGED: dict[int | str, dict[str, Any]] = {200: {"headers": headers("Link")}}


def link_next_page(
    request: Request, response: Response, cursor: str | None, **params: str | int
) -> None:
    """Point `Link: <...>; rel="next"` at the page after this one, if there is one.

    The query is written in SigV4's canonical form (sorted by name, every byte but RFC 3986's
    unreserved ones escaped): a client that signs a URL's query as written (curl
    --aws-sigv4) then signs what the server checks."""
    if cursor is None:
        return
    pairs = sorted(
        (quote(name, safe=UNRESERVED), quote(str(value), safe=UNRESERVED))
        for name, value in (params | {"cursor": cursor}).items()
    )
    written = "&".join(f"{name}={value}" for name, value in pairs)
    # The ASGI path already holds the root path (a stage or mount prefix) in front.
    response.headers["Link"] = f'<{request.url.path}?{written}>; rel="next"'


V = TypeVar("V", bound=Versioned)


def versioned(response: Response, resource: V) -> V:
    """The resource, with its version as the answer's ETag."""
    response.headers["ETag"] = f'"{resource.version}"'
    return resource


def json_answer(response: Response, body: bytes, status_code: int = 200) -> Response:
    """An answer of JSON the route wrote itself, with the headers set on `response` (the
    route's own, which FastAPI adds only to an answer it serialises)."""
    answer = Response(body, status_code=status_code, media_type="application/json")
    answer.raw_headers.extend(
        header for header in response.raw_headers if header[0] != b"content-length"
    )
    return answer


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header demands; None when any version will do.

    Only a single strong tag can name a version; anything else cannot match one (RFC 9110
    compares If-Match strongly), so it fails the precondition rather than being ignored.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip()
    digits = tag[1:-1]
    # No stored version has more than 18 digits (a store's integers stop at 2**63 - 1), so a
    # longer one cannot match, and is never turned into a number.
    quoted = len(tag) >= 3 and tag[0] == tag[-1] == '"'
    if quoted and digits.isascii() and digits.isdigit() and len(digits) <= 18:
        return int(digits)
    raise PreconditionFailed()
