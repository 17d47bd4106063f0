from fastapi import APIRouter, Request, Response

from nimbus.api.deps import MessageUser, container_of
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.http import PAGED, Cursor, Limit, link_next_page
from nimbus.api.schemas.errors import ErrorBody
from nimbus.api.schemas.messages import MessageCreate, MessagePublic
from nimbus.domain.messages import PAGE_DEFAULT

router = APIRouter(tags=["messages"], responses=COMMON_RESPONSES)


@router.get("/messages", responses=PAGED)
def list_messages(
    request: Request,
    response: Response,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> list[MessagePublic]:
    """The board, newest first (anyone may read it); the next page is in the Link header."""
    container = container_of(request)
    page = container.messages.list(limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return [MessagePublic.model_validate(message) for message in page.items]


@router.post(
    "/messages",
    status_code=201,
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        429: {"model": ErrorBody, "description": "Too many messages from this account"},
    },
)
def post_message(body: MessageCreate, user: MessageUser, request: Request) -> MessagePublic:
    """Post a message under your username."""
    container = container_of(request)
    return MessagePublic.model_validate(container.messages.post(user, body.text))
