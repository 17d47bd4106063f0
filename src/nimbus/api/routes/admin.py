from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from nimbus.api.deps import AdminUser, container_of
from nimbus.api.errors import COMMON_RESPONSES, ERROR_JSON
from nimbus.api.http import PAGED, Cursor, Limit, link_next_page
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.audit import AuditEventPublic
from nimbus.domain.audit import AuditEvent, AuditKind

router = APIRouter(route_class=LeanRoute, tags=["admin"], responses=COMMON_RESPONSES)


class Endpoint(BaseModel):
    path: str
    methods: list[str]
    name: str


class Endpoints(BaseModel):
    endpoints: list[Endpoint]


@router.get(
    "/admin/endpoints", responses={401: {"content": ERROR_JSON}, 403: {"content": ERROR_JSON}}
)
async def list_endpoints(admin: AdminUser, request: Request) -> Endpoints:
    """Every route the API serves (administrators)."""
    return Endpoints(
        endpoints=[
            Endpoint(path=route.path, methods=sorted(route.methods or ()), name=route.name)
            for route in request.app.routes
            if isinstance(route, APIRoute)
        ]
    )


Subject = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="Only events done to this user's id (or credential's access key id)",
    ),
]


@router.get(
    "/admin/audit",
    response_model=list[AuditEventPublic],
    responses=PAGED | {401: {"content": ERROR_JSON}, 403: {"content": ERROR_JSON}},
)
async def list_audit_events(
    request: Request,
    response: Response,
    admin: AdminUser,
    subject: Subject = None,
    kind: Annotated[AuditKind | None, Query(description="Only events of this kind")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Sequence[AuditEvent]:
    """The audit trail, newest first (administrators); the next page is in the Link header."""
    container = container_of(request)
    page = await container.run(
        container.audit.list, admin, subject=subject, kind=kind, limit=limit, cursor=cursor
    )
    filters = {"subject": subject} if subject is not None else {}
    if kind is not None:
        filters["kind"] = kind.value
    link_next_page(request, response, page.next_cursor, limit=limit, **filters)
    return page.items
