"""What the OpenAPI document says beyond the routes' own declarations, decided in one place so
that it stays true for every operation: the shape of a 422, and the headers the API sends.

Client generators name methods after operation ids and types after schemas, so the ids are the
routes' names (`list_todos`, not FastAPI's `list_todos_todos_get`) and a 422 is the ErrorBody
the API sends, not FastAPI's `HTTPValidationError {detail}`.
"""

from collections.abc import Iterable
from typing import Any

from fastapi.openapi.constants import REF_TEMPLATE
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

_HEADERS: dict[str, dict[str, Any]] = {
    "Cache-Control": {
        "description": "How long the answer may be cached: `public, max-age=SECONDS`",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": 'The version, as a strong tag ("3"): send it in If-Match to update it',
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The next page, as `<URL>; rel="next"`; absent on the last page',
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
    },
    "WWW-Authenticate": {
        "description": "How to authenticate (RFC 6750): `Bearer`",
        "schema": {"type": "string"},
    },
}
_ERROR_BODY = "#/components/schemas/ErrorBody"


def name_operations(routes: Iterable[BaseRoute]) -> None:
    """Each operation's id is its route's name (unique across the app: a test checks)."""
    for route in routes:
        if isinstance(route, APIRoute) and route.operation_id is None:
            route.operation_id = route.name


def headers(*names: str) -> dict[str, dict[str, Any]]:
    """A response's `headers` entry: `responses={200: {"headers": headers("ETag")}}`."""
    return {name: _HEADERS[name] for name in names}


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Document 422 as the ErrorBody it is, Retry-After on every 429 and 503, and
    WWW-Authenticate on every 401."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if status == "422":
                    response["description"] = "A field or parameter is not valid (see errors)"
                    response["content"] = {"application/json": {"schema": {"$ref": _ERROR_BODY}}}
                if status in ("429", "503"):
                    response["headers"] = headers("Retry-After")
                if status == "401":
                    response["headers"] = headers("WWW-Authenticate")
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)  # no longer referenced
    schemas.pop("ValidationError", None)
    schemas.update(_error_schemas())  # what the errors' ERROR_JSON refers to
    return dict(
        document, components=dict(document["components"], schemas=dict(sorted(schemas.items())))
    )


def _error_schemas() -> dict[str, Any]:
    """ErrorBody's schema and those it refers to, as FastAPI writes a response model's."""
    from nimbus.api.schemas.errors import ErrorBody

    _, top = models_json_schema([(ErrorBody, "serialization")], ref_template=REF_TEMPLATE)
    definitions: dict[str, Any] = top["$defs"]
    return definitions
