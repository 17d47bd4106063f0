from fastapi import APIRouter, Request, Response

from nimbus.api.deps import TodoUser, container_of, store_read
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.http import (
    CONDITIONAL,
    Cursor,
    IfMatch,
    Limit,
    expected_version,
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


# The reads are coroutines that read the store as store_read says: on SQLite that spares them
# the thread hop, which costs more than the read.
@router.get("/todos")
async def list_todos(
    request: Request,
    response: Response,
    user: TodoUser,
    state: TodoState | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> list[TodoPublic]:
    """Your todos, newest first; the next page is in the Link header."""
    container = container_of(request)
    page = await store_read(
        container, container.todos.list, user, state=state, limit=limit, cursor=cursor
    )
    filters = {"state": state.value} if state is not None else {}
    link_next_page(request, response, page.next_cursor, limit=limit, **filters)
    return [TodoPublic.model_validate(todo) for todo in page.items]


@router.post("/todos", status_code=201)
def create_todo(
    body: TodoCreate, response: Response, user: TodoUser, request: Request
) -> TodoPublic:
    """Add a todo; it starts unstarted."""
    container = container_of(request)
    return _with_etag(response, container.todos.create(user, body.description, body.metadata))


@router.get("/todos/{uid}")
async def get_todo(uid: str, response: Response, user: TodoUser, request: Request) -> TodoPublic:
    """One of your todos."""
    container = container_of(request)
    return _with_etag(response, await store_read(container, container.todos.get, user, uid))


@router.put("/todos/{uid}", responses=CONDITIONAL)
def replace_todo(
    uid: str,
    body: TodoUpdate,
    response: Response,
    user: TodoUser,
    request: Request,
    if_match: IfMatch = None,
) -> TodoPublic:
    """Update a todo: send any of description, state, metadata (as seed 000 does)."""
    container = container_of(request)
    todo = container.todos.update(
        user, uid, body.changes(), expected_version=expected_version(if_match)
    )
    return _with_etag(response, todo)


@router.patch("/todos/{uid}", responses=CONDITIONAL)
def patch_todo(
    uid: str,
    body: TodoUpdate,
    response: Response,
    user: TodoUser,
    request: Request,
    if_match: IfMatch = None,
) -> TodoPublic:
    """Change some fields of a todo."""
    container = container_of(request)
    todo = container.todos.update(
        user, uid, body.changes(), expected_version=expected_version(if_match)
    )
    return _with_etag(response, todo)


@router.delete("/todos/{uid}", status_code=204, responses=CONDITIONAL)
def delete_todo(uid: str, user: TodoUser, request: Request, if_match: IfMatch = None) -> Response:
    """Delete a todo."""
    container = container_of(request)
    container.todos.delete(user, uid, expected_version=expected_version(if_match))
    return Response(status_code=204)


def _with_etag(response: Response, todo: Todo) -> TodoPublic:
    set_etag(response, todo.version)
    return TodoPublic.model_validate(todo)
