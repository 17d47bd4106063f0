from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from pydantic import TypeAdapter

from nimbus.api.deps import TodoUser, container_of, store_read
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.http import (
    CONDITIONAL,
    CREATED,
    PAGED,
    VERSIONED,
    Cursor,
    IfMatch,
    Limit,
    expected_version,
    json_response,
    link_next_page,
    set_etag,
)
from nimbus.api.schemas.errors import ErrorBody
from nimbus.api.schemas.todos import TodoCreate, TodoPublic, TodoUpdate
from nimbus.domain.todos import Todo, TodoState

router = APIRouter(
    tags=["todos"],
    responses=COMMON_RESPONSES
    | {401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)


# Every route serializes its own answer (json_response), straight from the domain objects and
# limited to the fields TodoPublic documents, with no TodoPublic built on the busiest routes.
# tests/api/test_todos.py holds the two to the same JSON.
_TODO = TypeAdapter(Todo)
_TODOS = TypeAdapter(Sequence[Todo])
_PUBLIC = set(TodoPublic.model_fields)


# The reads are coroutines that read the store as store_read says: on SQLite that spares them
# the thread hop, which costs more than the read.
@router.get("/todos", responses=PAGED, response_model=list[TodoPublic])
async def list_todos(
    request: Request,
    user: TodoUser,
    state: TodoState | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Your todos, newest first; the next page is in the Link header."""
    container = container_of(request)
    page = await store_read(
        container, container.todos.list, user, state=state, limit=limit, cursor=cursor
    )
    response = json_response(_TODOS.dump_json(page.items, include={"__all__": _PUBLIC}))
    filters = {"state": state.value} if state is not None else {}
    link_next_page(request, response, page.next_cursor, limit=limit, **filters)
    return response


@router.post("/todos", status_code=201, responses=CREATED, response_model=TodoPublic)
def create_todo(body: TodoCreate, user: TodoUser, request: Request) -> Response:
    """Add a todo; it starts unstarted."""
    container = container_of(request)
    return _todo_response(container.todos.create(user, body.description, body.metadata), 201)


@router.get("/todos/{uid}", responses=VERSIONED, response_model=TodoPublic)
async def get_todo(uid: str, user: TodoUser, request: Request) -> Response:
    """One of your todos."""
    container = container_of(request)
    return _todo_response(await store_read(container, container.todos.get, user, uid))


@router.put("/todos/{uid}", responses=CONDITIONAL | VERSIONED, response_model=TodoPublic)
def replace_todo(
    uid: str,
    body: TodoUpdate,
    user: TodoUser,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Update a todo: send any of description, state, metadata (as seed 000 does)."""
    container = container_of(request)
    todo = container.todos.update(
        user, uid, body.changes(), expected_version=expected_version(if_match)
    )
    return _todo_response(todo)


@router.patch("/todos/{uid}", responses=CONDITIONAL | VERSIONED, response_model=TodoPublic)
def patch_todo(
    uid: str,
    body: TodoUpdate,
    user: TodoUser,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields of a todo."""
    container = container_of(request)
    todo = container.todos.update(
        user, uid, body.changes(), expected_version=expected_version(if_match)
    )
    return _todo_response(todo)


@router.delete("/todos/{uid}", status_code=204, responses=CONDITIONAL)
def delete_todo(uid: str, user: TodoUser, request: Request, if_match: IfMatch = None) -> Response:
    """Delete a todo."""
    container = container_of(request)
    container.todos.delete(user, uid, expected_version=expected_version(if_match))
    return Response(status_code=204)


def _todo_response(todo: Todo, status_code: int = 200) -> Response:
    response = json_response(_TODO.dump_json(todo, include=_PUBLIC), status_code)
    set_etag(response, todo.version)
    return response
