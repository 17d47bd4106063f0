"""Every route answers through a public schema: a route returns domain objects (a user with
its password hash among them), and only its response model limits them to the public fields."""

import dataclasses
import inspect
import types
import typing
from collections.abc import Sequence

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.responses import Response

from nimbus.api.app import create_app
from nimbus.container import Container


def _public(model: object) -> bool:
    """Whether `model` is a pydantic model (or a list of them, or one of several) with no
    domain type inside."""
    origin = typing.get_origin(model)
    if origin in (list, Sequence, types.UnionType, typing.Union):
        return all(_public(arg) for arg in typing.get_args(model))
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    return not any(_holds_a_dataclass(field.annotation) for field in model.model_fields.values())


def _holds_a_dataclass(annotation: object) -> bool:
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return not _public(annotation)
    return any(_holds_a_dataclass(arg) for arg in typing.get_args(annotation))


@pytest.mark.store_independent
def test_every_route_answers_through_a_public_model(container: Container) -> None:
    """A route that builds its own Response (HTML, a token endpoint's RFC 6749 body) is exempt."""
    checked = 0
    for route in create_app(container).routes:
        if not isinstance(route, APIRoute):
            continue
        returns = inspect.signature(route.endpoint).return_annotation
        if isinstance(returns, type) and issubclass(returns, Response):
            continue
        assert _public(route.response_model), (route.path, route.response_model)
        checked += 1
    assert checked > 20
