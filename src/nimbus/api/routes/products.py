from fastapi import APIRouter, Request, Response

from nimbus.api.deps import AdminUser, SignedCaller, container_of
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
    link_next_page,
    set_etag,
)
from nimbus.api.schemas.errors import ErrorBody
from nimbus.api.schemas.products import ProductCreate, ProductPublic, ProductUpdate
from nimbus.domain.products import PAGE_DEFAULT, Product

router = APIRouter(tags=["products"], responses=COMMON_RESPONSES)

_SIGNED: dict[int | str, dict[str, object]] = {
    403: {"model": ErrorBody, "description": "Unsigned, or a bad, stale or revoked signature"}
}
_ADMIN: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
}


@router.get("/products", responses={**_SIGNED, **PAGED})
def list_products(
    request: Request,
    response: Response,
    caller: SignedCaller,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> list[ProductPublic]:
    """The inventory, oldest first, for signed service calls; the next page is in Link."""
    container = container_of(request)
    page = container.products.list(limit=limit, cursor=cursor)
    link_next_page(request, response, page.next_cursor, limit=limit)
    return [ProductPublic.of(product) for product in page.items]


@router.get("/products/{product_id}", responses={**_SIGNED, 404: {"model": ErrorBody}, **VERSIONED})
def get_product(
    product_id: str, response: Response, caller: SignedCaller, request: Request
) -> ProductPublic:
    """One product, for signed service calls."""
    container = container_of(request)
    return _with_etag(response, container.products.get(product_id))


@router.post("/products", status_code=201, responses={**_ADMIN, **CREATED})
def create_product(
    body: ProductCreate, response: Response, admin: AdminUser, request: Request
) -> ProductPublic:
    """Add a product (administrators)."""
    container = container_of(request)
    product = container.products.create(body.name, body.description, body.price_cents, body.stock)
    return _with_etag(response, product)


@router.put("/products/{product_id}", responses={**_ADMIN, **CONDITIONAL, **VERSIONED})
def replace_product(
    product_id: str,
    body: ProductCreate,
    response: Response,
    admin: AdminUser,
    request: Request,
    if_match: IfMatch = None,
) -> ProductPublic:
    """Replace a product's fields; description and stock left out become "" and 0
    (administrators)."""
    container = container_of(request)
    product = container.products.update(
        product_id, body.changes(), expected_version=expected_version(if_match)
    )
    return _with_etag(response, product)


@router.patch("/products/{product_id}", responses={**_ADMIN, **CONDITIONAL, **VERSIONED})
def patch_product(
    product_id: str,
    body: ProductUpdate,
    response: Response,
    admin: AdminUser,
    request: Request,
    if_match: IfMatch = None,
) -> ProductPublic:
    """Change some fields of a product (administrators)."""
    container = container_of(request)
    product = container.products.update(
        product_id, body.changes(), expected_version=expected_version(if_match)
    )
    return _with_etag(response, product)


@router.delete("/products/{product_id}", status_code=204, responses={**_ADMIN, **CONDITIONAL})
def delete_product(
    product_id: str, admin: AdminUser, request: Request, if_match: IfMatch = None
) -> Response:
    """Remove a product (administrators)."""
    container = container_of(request)
    container.products.delete(product_id, expected_version=expected_version(if_match))
    return Response(status_code=204)


def _with_etag(response: Response, product: Product) -> ProductPublic:
    set_etag(response, product.version)
    return ProductPublic.of(product)
