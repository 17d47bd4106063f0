"""GET /index: seed 004's public inventory page.

Seed 004's page calls its own products API with a signed request. nimbus reads the same
service in-process instead: the data and paging are the products API's, without a network
hop back into the same deployment, a credential to keep for it, or a request that waits on
another request of the same worker.
"""

from html import escape
from string import Template
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from nimbus.api.deps import container_of
from nimbus.api.errors import COMMON_RESPONSES
from nimbus.api.http import Cursor, Limit
from nimbus.api.routing import LeanRoute
from nimbus.domain.products import PAGE_DEFAULT, Product

router = APIRouter(route_class=LeanRoute, tags=["products"], responses=COMMON_RESPONSES)

# Nothing but the inline style may load or run: the page holds text only.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
}

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Product inventory · nimbus</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1d2733; }
h1 { line-height: 1.25; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid #dde3ea;
         vertical-align: top; }
th { background: #f3f6f9; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
td:first-child { overflow-wrap: break-word; }
.name { display: block; font-weight: 600; }
.muted { color: #5c6b7a; }
nav { margin-top: 1rem; }
/* Only a word too long for any screen scrolls, and then the table alone, not the page. */
.table-wrap { overflow-x: auto; }
/* A phone: less room around the columns. */
@media (max-width: 30rem) {
  body { margin: 1rem auto; }
  h1 { font-size: 1.5rem; }
  th, td { padding: .5rem .375rem; }
}
</style>
</head>
<body>
<h1>Product inventory</h1>
$body
</body>
</html>
""")


@router.get(
    "/index",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The inventory as HTML"}},
)
async def inventory_page(
    request: Request,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> HTMLResponse:
    """The product inventory as an HTML page (anyone)."""
    container = container_of(request)
    page = await container.run(container.products.list, limit=limit, cursor=cursor)
    if page.items:
        rows = "\n".join(_row(product) for product in page.items)
        body = (
            '<div class="table-wrap" role="region" aria-label="Products" tabindex="0">\n'
            "<table>\n<thead><tr><th>Product</th>"
            '<th class="num">Price</th><th class="num">In stock</th></tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody>\n</table>\n</div>"
        )
    else:
        body = '<p class="muted">No products yet.</p>'
    if page.next_cursor is not None:
        query = escape(urlencode({"limit": limit, "cursor": page.next_cursor}))
        body += f'\n<nav><a rel="next" href="?{query}">Next page</a></nav>'
    return HTMLResponse(PAGE.substitute(body=body), headers=HEADERS)


def _row(product: Product) -> str:
    # The description under the name, not a column of its own: three columns fit a phone.
    return (
        f'<tr><td><span class="name">{escape(product.name)}</span>'
        f'<span class="muted">{escape(product.description)}</span></td>'
        f'<td class="num">{dollars(product.price_cents)}</td>'
        f'<td class="num">{product.stock:,}</td></tr>'
    )


def dollars(cents: int) -> str:
    """A price as the page shows it: nimbus prices everything in US dollars ("$1,234.50")."""
    return f"${cents // 100:,}.{cents % 100:02d}"
