from fastapi import APIRouter, Request, Response

from nimbus.api.deps import TodoUser, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON
from nimbus.api.http import (
    CONDITIONAL,
    CREATED,
    PAGED,
    VERSIONED,
    Cursor,
    IfMatch,
    Limit,
    expected_version,
    json_answer,
    link_next_page,
    versioned,
)
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.todos import TodoCreate, TodoPublic, TodoUpdate, todo_json, todos_json
from nimbus.domain.principals import Claimant
from nimbus.domain.todos import Todo, TodoState

router = APIRouter(
    route_class=LeanRoute,
    tags=["todos"],
    responses=COMMON_RESPONSES
    | {401: {"content": ERROR_JSON}, 403: {"content": ERROR_JSON}, 404: {"content": ERROR_JSON}},
)


@router.get("/todos", responses=PAGED, response_model=list[TodoPublic])
async def list_todos(
    request: Request,
    response: Response,
    user: TodoUser,
    state: TodoState | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Your todos, newest first; the next page is in the Link header."""
    container = container_of(request)
    page = await container.run(container.todos.list, user, state=state, limit=limit, cursor=cursor)
    filters = {"state": state.value} if state is not None else {}
    link_next_page(request, response, page.next_cursor, limit=limit, **filters)
    return json_answer(response, todos_json(page.items))


@router.post("/todos", status_code=201, responses=CREATED, response_model=TodoPublic)
async def create_todo(
    body: TodoCreate, user: TodoUser, request: Request, response: Response
) -> Response:
    """Add a todo; it starts unstarted."""
    container = container_of(request)
    todo = await container.run(container.todos.create, user, body.description, body.metadata)
    return _answer(response, todo, 201)


@router.get("/todos/{uid}", responses=VERSIONED, response_model=TodoPublic)
async def get_todo(uid: str, user: TodoUser, request: Request, response: Response) -> Response:
    """One of your todos."""
    container = container_of(request)
    return _answer(response, await container.run(container.todos.get, user, uid))


@router.put("/todos/{uid}", responses=CONDITIONAL | VERSIONED, response_model=TodoPublic)
async def replace_todo(
    uid: str,
    body: TodoUpdate,
    user: TodoUser,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Response:
    """Update a todo: send any of description, state, metadata (as seed 000 does)."""
    return _answer(response, await _update(request, user, uid, body, if_match))


@router.patch("/todos/{uid}", responses=CONDITIONAL | VERSIONED, response_model=TodoPublic)
async def patch_todo(
    uid: str,
    body: TodoUpdate,
    user: TodoUser,
    request: Request,
    response: Response,
    if_match: IfMatch = None,
) -> Response:
    """Change some fields of a todo."""
    return _answer(response, await _update(request, user, uid, body, if_match))


@router.delete("/todos/{uid}", status_code=204, responses=CONDITIONAL)
async def delete_todo(
    uid: str, user: TodoUser, request: Request, if_match: IfMatch = None
) -> Response:
    """Delete a todo."""
    container = container_of(request)
    await container.run(
        container.todos.delete, user, uid, expected_version=expected_version(if_match)
    )
    return Response(status_code=204)


def _answer(response: Response, todo: Todo, status_code: int = 200) -> Response:
    """The todo, with its version as the answer's ETag."""
    versioned(response, todo)
    return json_answer(response, todo_json(todo), status_code)


async def _update(
    request: Request, user: Claimant, uid: str, body: TodoUpdate, if_match: str | None
) -> Todo:
    container = container_of(request)
    return await container.run(
        container.todos.update,
        user,
        uid,
        body.changes(),
        expected_version=expected_version(if_match),
    )
