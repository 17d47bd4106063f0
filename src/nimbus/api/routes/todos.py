from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from nimbus.api.deps import ContainerDep, CurrentUser
from nimbus.api.schemas.errors import ErrorBody
from nimbus.api.schemas.todos import TodoCreate, TodoPublic, TodoUpdate
from nimbus.domain.errors import PreconditionFailed
from nimbus.domain.todos import Todo, TodoState

router = APIRouter(tags=["todos"], responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}})

DEFAULT_PAGE = 50
MAX_PAGE = 100

IfMatch = Annotated[
    str | None,
    Header(description='A version from an earlier ETag, or "*"; a stale one gets 412'),
]
_CONDITIONAL: dict[int | str, dict[str, Any]] = {412: {"model": ErrorBody}}


@router.get("/todos")
def list_todos(
    request: Request,
    response: Response,
    user: CurrentUser,
    container: ContainerDep,
    state: TodoState | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> list[TodoPublic]:
    """Your todos, newest first; the next page is in the Link header."""
    page = container.todos.list(user, state=state, limit=limit, cursor=cursor)
    if page.next_cursor is not None:
        params = {"limit": str(limit), "cursor": page.next_cursor}
        if state is not None:
            params["state"] = state.value
        next_url = request.url.replace_query_params(**params)
        path = request.scope.get("root_path", "") + request.url.path
        response.headers["Link"] = f'<{path}?{next_url.query}>; rel="next"'
    return [TodoPublic.of(todo) for todo in page.items]


@router.post("/todos", status_code=201)
def create_todo(
    body: TodoCreate, response: Response, user: CurrentUser, container: ContainerDep
) -> TodoPublic:
    """Add a todo; it starts unstarted."""
    return _with_etag(response, container.todos.create(user, body.description, body.metadata))


@router.get("/todos/{uid}")
def get_todo(
    uid: str, response: Response, user: CurrentUser, container: ContainerDep
) -> TodoPublic:
    """One of your todos."""
    return _with_etag(response, container.todos.get(user, uid))


@router.put("/todos/{uid}", responses=_CONDITIONAL)
def replace_todo(
    uid: str,
    body: TodoUpdate,
    response: Response,
    user: CurrentUser,
    container: ContainerDep,
    if_match: IfMatch = None,
) -> TodoPublic:
    """Update a todo: send any of description, state, metadata (as seed 000 does)."""
    todo = container.todos.update(
        user, uid, body.changes(), expected_version=expected_version(if_match)
    )
    return _with_etag(response, todo)


@router.patch("/todos/{uid}", responses=_CONDITIONAL)
def patch_todo(
    uid: str,
    body: TodoUpdate,
    response: Response,
    user: CurrentUser,
    container: ContainerDep,
    if_match: IfMatch = None,
) -> TodoPublic:
    """Change some fields of a todo."""
    todo = container.todos.update(
        user, uid, body.changes(), expected_version=expected_version(if_match)
    )
    return _with_etag(response, todo)


@router.delete("/todos/{uid}", status_code=204, responses=_CONDITIONAL)
def delete_todo(
    uid: str, user: CurrentUser, container: ContainerDep, if_match: IfMatch = None
) -> Response:
    """Delete a todo."""
    container.todos.delete(user, uid, expected_version=expected_version(if_match))
    return Response(status_code=204)


def _with_etag(response: Response, todo: Todo) -> TodoPublic:
    response.headers["ETag"] = f'"{todo.version}"'
    return TodoPublic.of(todo)


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header demands; None when any version will do.

    Only a single strong tag can name a version; anything else cannot match one (RFC 9110
    compares If-Match strongly), so it fails the precondition rather than being ignored.
    """
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip()
    if len(tag) >= 3 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit():
        return int(tag[1:-1])
    raise PreconditionFailed()
