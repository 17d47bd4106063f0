from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from nimbus.api.deps import AdminUser, SignedCaller, container_of
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
    link_next_page,
    versioned,
)
from nimbus.api.routing import LeanRoute
from nimbus.api.schemas.products import ProductCreate, ProductPublic, ProductUpdate
from nimbus.domain.products import PAGE_DEFAULT, Product

router = APIRouter(route_class=LeanRoute, tags=["products"], responses=COMMON_RESPONSES)

_SIGNED: dict[int | str, dict[str, object]] = {
    403: {"content": ERROR_JSON, "description": "Unsigned, or a bad, stale or revoked signature"}
}
_ADMIN: dict[int | str, dict[str, object]] = {
    401: {"content": ERROR_JSON},
    403: {"content": ERROR_JSON},
    404: {"content": ERROR_JSON},
}


@router.get("/products", response_model=list[ProductPublic], responses={**_SIGNED, **PAGED})
async def list_products(
    request: Request,
    response: Response,
    caller: SignedCaller,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> Sequence[Product]:
    """The inventory, oldest first, for signed service calls; the next page is in Link."""
    container = container_of(request)
    page = await container.run(container.products.list, limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return page.items


@router.get(
    "/products/{product_id}",
    response_model=ProductPublic,
    responses={**_SIGNED, 404: {"content": ERROR_JSON}, **VERSIONED},
)
async def get_product(
    product_id: str, response: Response, caller: SignedCaller, request: Request
) -> Product:
    """One product, for signed service calls."""
    container = container_of(request)
    return versioned(response, await container.run(container.products.get, product_id))


@router.post(
    "/products", status_code=201, response_model=ProductPublic, responses={**_ADMIN, **CREATED}
)
async def create_product(
    body: ProductCreate, response: Response, admin: AdminUser, request: Request
) -> Product:
    """Add a product (administrators)."""
    container = container_of(request)
    product = await container.run(
        container.products.create, body.name, body.description, body.price_cents, body.stock
    )
    return versioned(response, product)


@router.put(
    "/products/{product_id}",
    response_model=ProductPublic,
    responses={**_ADMIN, **CONDITIONAL, **VERSIONED},
)
async def replace_product(
    product_id: str,
    body: ProductCreate,
    response: Response,
    admin: AdminUser,
    request: Request,
    if_match: IfMatch = None,
) -> Product:
    """Replace a product's fields; description and stock left out become "" and 0
    (administrators)."""
    return versioned(response, await _update(request, product_id, body, if_match))


@router.patch(
    "/products/{product_id}",
    response_model=ProductPublic,
    responses={**_ADMIN, **CONDITIONAL, **VERSIONED},
)
async def patch_product(
    product_id: str,
    body: ProductUpdate,
    response: Response,
    admin: AdminUser,
    request: Request,
    if_match: IfMatch = None,
) -> Product:
    """Change some fields of a product (administrators)."""
    return versioned(response, await _update(request, product_id, body, if_match))


@router.delete("/products/{product_id}", status_code=204, responses={**_ADMIN, **CONDITIONAL})
async def delete_product(
    product_id: str, admin: AdminUser, request: Request, if_match: IfMatch = None
) -> Response:
    """Remove a product (administrators)."""
    container = container_of(request)
    await container.run(
        container.products.delete, product_id, expected_version=expected_version(if_match)
    )
    return Response(status_code=204)


async def _update(
    request: Request, product_id: str, body: ProductCreate | ProductUpdate, if_match: str | None
) -> Product:
    container = container_of(request)
    return await container.run(
        container.products.update,
        product_id,
        body.changes(),
        expected_version=expected_version(if_match),
    )
