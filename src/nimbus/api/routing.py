"""`LeanRoute`: a route that makes its calls without FastAPI's per-request dependency solving.

FastAPI's handler solves a route's dependency tree afresh on every request: it classifies each
callable, builds its cache key, walks four kinds of parameters at every level and opens a
telemetry span around each step, about a third of the CPU time of an authenticated read. The
routes that need little of it are most of nimbus's: a coroutine that answers with a Response
and takes path, query, header and cookie parameters, a JSON body, the request, the response,
and caller checks (nimbus.api.deps) that take only the request, the response, or other such
checks.

For such a route the calls are planned once, when the route is built, and made in FastAPI's
order: the body read (a JSON decode error is FastAPI's 422), each check (its own checks
first), then the parameters and the body validated as FastAPI's `request_params_to_args` and
`request_body_to_args` validate them (a plain parameter is read under its one key, what that
function works out about it on every request worked out once), with FastAPI's 422. Every
other route (a form body, a generator or a plain function among its calls, a call met twice
in its tree, an answer that is not a Response), and every request while an app overrides a
dependency, is handled by FastAPI's own handler. `tests/api/test_lean_routes.py` holds the
two to the same answers.
"""

import email.message
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine
from functools import lru_cache
from typing import Any

from fastapi import params as fastapi_params
from fastapi._body_limit import get_body_limit_error
from fastapi._compat import field_annotation_is_sequence
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import (
    _get_param_aliases,
    _get_param_model,
    _validate_value_with_model_field,
    get_typed_return_annotation,
    request_body_to_args,
    request_params_to_args,
)
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

from nimbus.values import frozen

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class LeanRoute(APIRoute):
    """A route served by a planned handler when its shape allows (see the module)."""

    fastapi_handler: Handler
    lean: bool

    def get_route_handler(self) -> Handler:
        self.fastapi_handler = fastapi_handler = super().get_route_handler()
        plan = (
            _plan(self.dependant, set(), self._body())
            if _answers_with_response(self.dependant)
            else None
        )
        self.lean = plan is not None
        if plan is None:
            return fastapi_handler
        overrides = self.dependency_overrides_provider

        async def handler(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await fastapi_handler(request)
            # The response a route's parameter names, as FastAPI makes it: no length, no status.
            response = Response()
            del response.headers["content-length"]
            response.status_code = None  # type: ignore[assignment]
            answer = await plan.call(request, response)
            if not isinstance(answer, Response):
                raise TypeError(f"{self.name} answered with {type(answer).__name__}")
            return answer

        return handler

    def _body(self) -> "_Body | None":
        """How the route reads its body, or None for none it can read (a form's)."""
        field = self.body_field
        if field is None or isinstance(field.field_info, fastapi_params.Form):
            return None
        strict = self.strict_content_type
        return _Body(
            fields=list(self.dependant.body_params),
            embed=self._embed_body_fields,
            strict=strict.value if isinstance(strict, DefaultPlaceholder) else strict,
        )


@frozen
class _Body:
    """A JSON body, read and validated as FastAPI's handler does."""

    fields: list[Any]  # FastAPI's ModelFields
    embed: bool
    strict: bool  # a body without a Content-Type is bytes, not JSON

    async def values(self, request: Request) -> tuple[dict[str, Any], list[Any]]:
        body: Any = PydanticUndefined  # no body at all, as FastAPI tells it from an empty one
        try:
            if raw := await request.body():
                content_type = request.headers.get("content-type")
                json_body = (not content_type and not self.strict) or _is_json(content_type)
                body = await request.json() if json_body else raw
        except json.JSONDecodeError as exc:
            error = {
                "type": "json_invalid",
                "loc": ("body", exc.pos),
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.msg},
            }
            raise RequestValidationError([error], body=exc.doc) from exc
        except HTTPException:
            raise
        except Exception as exc:
            if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(exc)):
                raise limit from exc
            raise HTTPException(400, "There was an error parsing the body") from exc
        return await request_body_to_args(self.fields, body, self.embed)


@lru_cache(maxsize=64)
def _is_json(content_type: str | None) -> bool:
    """application/json or application/*+json, parameters aside (FastAPI's test)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


@frozen
class _Call:
    """A coroutine and where its arguments come from."""

    function: Callable[..., Awaitable[Any]]
    checks: tuple[tuple[str, "_Call"], ...]
    params: tuple["_Param", ...]
    body: _Body | None
    request: str | None
    response: str | None

    async def call(self, request: Request, response: Response) -> Any:
        # The body is read first, as FastAPI reads it before it solves anything.
        in_body, body_errors = await self.body.values(request) if self.body else ({}, [])
        values: dict[str, Any] = {}
        for name, check in self.checks:
            values[name] = await check.call(request, response)
        errors: list[Any] = []
        for param in self.params:
            errors += param.read(request, values)
        if errors or body_errors:
            raise RequestValidationError(errors + body_errors, body=None)
        values.update(in_body)
        if self.request is not None:
            values[self.request] = request
        if self.response is not None:
            values[self.response] = response
        return await self.function(**values)


@frozen
class _Param:
    """A parameter of the route, read from `where` as FastAPI's request_params_to_args reads
    it. A plain value under one key is read here, with its per-request introspection done
    once; a list, a model or a choice of aliases is left to that function."""

    field: Any  # FastAPI's ModelField
    where: str  # see _SOURCES
    alias: str | None  # the one key a plain value is read under

    def read(self, request: Request, values: dict[str, Any]) -> list[Any]:
        """The errors; the value goes into `values` when there is none."""
        source = _SOURCES[self.where](request)
        if self.alias is None:
            found, errors = request_params_to_args([self.field], source)
            values.update(found)
            return errors
        value = source.get(self.alias)
        value, errors = _validate_value_with_model_field(
            field=self.field,
            value=PydanticUndefined if value is None else value,
            values={},
            loc=(self.where, self.alias),
        )
        if not errors:
            values[self.field.name] = value
        return errors


def _param(where: str, field: Any) -> _Param:
    aliases = _get_param_aliases(field)
    plain = (
        _get_param_model(field) is None
        and len(aliases) == 1
        and not field_annotation_is_sequence(field.field_info.annotation)
    )
    return _Param(field=field, where=where, alias=aliases[0][1] if plain else None)


_SOURCES: dict[str, Callable[[Request], Any]] = {
    "path": lambda request: request.path_params,
    "query": lambda request: request.query_params,
    "header": lambda request: request.headers,
    "cookie": lambda request: request.cookies,
}


def _plan(dependant: Dependant, seen: set[int], body: _Body | None = None) -> _Call | None:
    """The call of `dependant` and of its checks, or None when one of them is not for us.
    Only the route itself takes parameters: a check's would be validated in an order of its
    own. A call met twice is left to FastAPI, which makes it once a request."""
    call = dependant.call
    if call is None or id(call) in seen or not _is_coroutine(call):
        return None
    seen.add(id(call))
    if (
        bool(dependant.body_params) != (body is not None)
        or dependant.background_tasks_param_name
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.security_scopes_param_name
    ):
        return None
    checks = []
    for sub in dependant.dependencies:
        if sub.name is None:  # a dependency of the route's own `dependencies=`
            return None
        if sub.path_params or sub.query_params or sub.header_params or sub.cookie_params:
            return None
        check = _plan(sub, seen)
        if check is None:
            return None
        checks.append((sub.name, check))
    params = tuple(
        _param(where, field)
        for where, fields in (
            ("path", dependant.path_params),
            ("query", dependant.query_params),
            ("header", dependant.header_params),
            ("cookie", dependant.cookie_params),
        )
        for field in fields
    )
    return _Call(
        function=call,
        checks=tuple(checks),
        params=params,
        body=body,
        request=dependant.request_param_name,
        response=dependant.response_param_name,
    )


def _is_coroutine(call: Callable[..., Any]) -> bool:
    # A caller check is an instance whose __call__ is the coroutine.
    function = call if inspect.isroutine(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(function)


def _answers_with_response(dependant: Dependant) -> bool:
    call = dependant.call
    if call is None or not inspect.isfunction(call):
        return False
    answer = get_typed_return_annotation(call)  # as FastAPI reads it for a response_model
    return isinstance(answer, type) and issubclass(answer, Response)
