from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel

from nimbus.api.deps import AdminUser
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.schemas.errors import ErrorBody

router = APIRouter(tags=["admin"], responses=COMMON_RESPONSES)


class Endpoint(BaseModel):
    path: str
    methods: list[str]
    name: str


class Endpoints(BaseModel):
    endpoints: list[Endpoint]


@router.get("/admin/endpoints", responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})
async def list_endpoints(admin: AdminUser, request: Request) -> Endpoints:
    """Every route the API serves (administrators)."""
    return Endpoints(
        endpoints=[
            Endpoint(path=route.path, methods=sorted(route.methods or ()), name=route.name)
            for route in request.app.routes
            if isinstance(route, APIRoute)
        ]
    )
