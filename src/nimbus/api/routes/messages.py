from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from nimbus.api.deps import MessageUser, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON
from nimbus.api.http import PAGED, Cursor, Limit, link_next_page
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.messages import MessageCreate, MessagePublic
from nimbus.domain.messages import PAGE_DEFAULT, Message

router = APIRouter(route_class=LeanRoute, tags=["messages"], responses=COMMON_RESPONSES)


@router.get("/messages", response_model=list[MessagePublic], responses=PAGED)
async def list_messages(
    request: Request,
    response: Response,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> Sequence[Message]:
    """The board, newest first (anyone may read it); the next page is in the Link header."""
    container = container_of(request)
    page = await container.run(container.messages.list, limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return page.items


@router.post(
    "/messages",
    status_code=201,
    response_model=MessagePublic,
    responses={
        401: {"content": ERROR_JSON},
        403: {"content": ERROR_JSON},
        429: {"content": ERROR_JSON, "description": "Too many messages from this account"},
    },
)
async def post_message(body: MessageCreate, user: MessageUser, request: Request) -> Message:
    """Post a message under your username."""
    container = container_of(request)
    return await container.run(container.messages.post, user, body.text)
