"""The API as an AWS Lambda function behind API Gateway (`nimbus.entrypoints.aws_lambda.handler`).

Mangum turns REST API (payload 1.0) and HTTP API (payload 2.0) events into ASGI requests:
base64 bodies, multi-value headers and query strings, cookies. The two handler classes here
add what it leaves out: a path with the stage or the custom domain's mapping key in front is
routed without it, and that prefix becomes the ASGI `root_path`, so /docs, Link headers and
the OpenAPI `servers` point back through it. They also pass on what API Gateway has already
verified, so the API does not check it twice: the claims nimbus's authorizer function
returned, and the IAM identity whose SigV4 signature API Gateway checked (AWS_IAM routes).

The app and its store client are built once per execution environment, in the init phase
when running on Lambda, and reused by every invocation; no lifespan runs per request, and
nothing makes a network call before the first request needs one (the first administrator,
NIMBUS_FIRST_ADMIN_*, is seen to at the first request). On Lambda, nimbus's JSON log
lines replace the runtime's, and each carries the invocation's Lambda and API Gateway request
ids. With SnapStart, each environment resumed from the snapshot re-seeds `random` and drops
its store connections (`after_restore`).
"""

import gc

# Init makes a few hundred thousand objects that live as long as the execution environment,
# and the collector would walk them again at every threshold while they are made. It is off
# meanwhile, and on Lambda they are then frozen out of its sight (gc.freeze). The little
# garbage init leaves behind is never collected (docs/performance.md has the figures).
_collecting = gc.isenabled()
gc.disable()

import functools
import importlib
import json
import logging
import os
import random
from collections.abc import Callable
from typing import Any, ParamSpec
from urllib.parse import unquote

from mangum import Mangum
from mangum.handlers import APIGateway, HTTPGateway
from mangum.types import LambdaContext, LambdaEvent, Response, Scope

from nimbus import metrics, tracing
from nimbus.api.app import create_app, load_routes
from nimbus.api.deps import VERIFIED_CLAIMS, VERIFIED_IAM_CALLER
from nimbus.bootstrap import build, provide_first_admin
from nimbus.container import Container
from nimbus.domain.credentials import ServiceCaller
from nimbus.domain.errors import Unavailable
from nimbus.emf import Emf
from nimbus.entrypoints.aws_events import CLAIMS_CONTEXT_KEY, LambdaFunction, is_warm_up
from nimbus.logs import INVOCATION, configure_lambda
from nimbus.settings import Settings

log = logging.getLogger(__name__)
P = ParamSpec("P")


def _traced(make: Callable[P, LambdaFunction]) -> Callable[P, LambdaFunction]:
    """For the handler factory: traces configured before the app is built (its stores are
    wrapped then), and flushed at the end of every invocation, as the environment may be frozen
    or ended after it. Off, the handler it makes is returned as it is."""

    @functools.wraps(make)
    def made(*args: P.args, **kwargs: P.kwargs) -> LambdaFunction:
        if not tracing.configure():
            return make(*args, **kwargs)
        handle = make(*args, **kwargs)

        def traced(event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
            try:
                return handle(event, context)
            finally:
                tracing.flush()

        return traced

    return made


@_traced
def make_handler(settings: Settings, container: Container | None = None) -> LambdaFunction:
    if container is None:
        container = build(settings, provision=False, one_request_at_a_time=True)
    # On demand, each router is built when a request first reaches it: a cold start answers
    # after building the routes it needs, not all of them. An init that no request waits for
    # (SnapStart's, whose snapshot then holds them; provisioned concurrency's) builds them all.
    lazy = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand") == "on-demand"
    app = create_app(container, lazy_routes=lazy)
    if settings.metrics_namespace:
        metrics.use(Emf(settings.metrics_namespace))
    adapter = Mangum(
        app,
        lifespan="off",
        api_gateway_base_path=settings.api_base_path,
        custom_handlers=[_HttpApi, _RestApi],
    )

    # Init makes no network call, so the first administrator is seen to before the first
    # request instead: one look-up per execution environment, and none once it is settled.
    first_admin_pending = settings.first_admin_username is not None

    def handle(event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        nonlocal first_admin_pending
        if is_warm_up(event):
            load_routes(app)  # a warmed environment has every route built
            return {"warm": True}
        # Every record logged while this invocation runs names it (nimbus.logs).
        token = INVOCATION.set(invocation_ids(event, context))
        try:
            if first_admin_pending:
                first_admin_pending = not _first_admin_settled(container)
            return adapter(event, context)
        finally:
            INVOCATION.reset(token)

    return handle


def _first_admin_settled(container: Container) -> bool:
    """Whether NIMBUS_FIRST_ADMIN_*'s account is seen to: made, found, or refused for a
    reason another try cannot mend (logged). False when the store or SSM could not be reached:
    the request goes on, and the next one tries again."""
    try:
        provide_first_admin(container)
    except Unavailable as error:
        log.error("First administrator not provided yet: %s", error.message, exc_info=error)
        return False
    except ValueError as error:
        log.error("First administrator not provided: %s", error)
    return True


def invocation_ids(event: LambdaEvent, context: object) -> dict[str, str] | None:
    """The Lambda request id and API Gateway's `requestContext.requestId`, those there are."""
    ids = {}
    lambda_id = getattr(context, "aws_request_id", None)
    if isinstance(lambda_id, str) and lambda_id:
        ids["lambda_request_id"] = lambda_id
    request_context = event.get("requestContext")
    gateway_id = request_context.get("requestId") if isinstance(request_context, dict) else None
    if isinstance(gateway_id, str) and gateway_id:
        ids["apigw_request_id"] = gateway_id
    return ids or None


@functools.cache
def _settings() -> Settings:
    return Settings()


@functools.cache
def _default_handler() -> LambdaFunction:
    container = build(_settings(), provision=False, one_request_at_a_time=True)
    _on_each_restore(container)
    return make_handler(_settings(), container)


def _on_each_restore(container: Container) -> None:
    """Have SnapStart call `after_restore` in each environment it resumes from the snapshot.
    Lambda's Python runtimes (3.12 and later) carry snapshot_restore_py; elsewhere, where there
    are no snapshots either, there is nothing to register."""
    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ImportError:
        return
    hooks.register_after_restore(after_restore, container)


def after_restore(container: Container) -> None:
    """An environment resumed from the snapshot shares the memory of every other one resumed
    from it, and none of its connections: what must differ between copies is made anew, and
    what cannot outlive the snapshot goes. Ids, tokens, salts and nonces come from os.urandom
    (`secrets`), which resumed environments do not share; the signing key, read on first use,
    is the stage's and may be shared (init never reads it, so no snapshot holds it)."""
    # random's state was seeded once, at import: every copy would draw the same retry jitter
    # and back off in step.
    random.seed()
    # Pooled connections (the DynamoDB client's; SQLite's) are reopened on first use.
    container.storage.close()
    log.info("resumed from a SnapStart snapshot: random re-seeded, store connections dropped")


def handler(event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
    return _default_handler()(event, context)


class _RestApi(APIGateway):
    """REST API events: `path` has no stage; `requestContext.path` is what the client asked
    for, stage or mapping key included."""

    @property
    def scope(self) -> Scope:
        scope = super().scope
        external = self.event["requestContext"].get("path") or scope["path"]
        return _with_prefix(scope, scope["path"], unquote(external), self.event)


class _HttpApi(HTTPGateway):
    """HTTP API events (either payload version): the path carries the stage unless it is
    `$default`."""

    @property
    def scope(self) -> Scope:
        scope = super().scope
        external = route = scope["path"]
        stage = self.event["requestContext"].get("stage")
        if stage and stage != "$default":
            route = _without_prefix(route, f"/{stage}")
        return _with_prefix(scope, route, external, self.event)

    def __call__(self, response: Response) -> dict[str, Any]:
        answer = super().__call__(response)
        if not response["body"]:
            # Mangum labels every payload 2.0 answer JSON, an empty 204 included.
            headers = answer.get("headers") or {}
            if not any(name == b"content-type" for name, _ in response["headers"]):
                headers.pop("content-type", None)
        return answer


def _with_prefix(scope: Scope, route: str, external: str, event: LambdaEvent) -> Scope:
    """ASGI's convention (uvicorn's --root-path): `path` is the whole path, `root_path` the
    part in front of the app's routes."""
    if route == "/":
        prefix = external.rstrip("/")
    elif external.endswith(route):
        prefix = external[: len(external) - len(route)]
    else:
        prefix = ""
    scope["root_path"] = prefix
    scope["path"] = prefix + route
    claims = _authorizer_claims(event)
    if claims is not None:
        scope[VERIFIED_CLAIMS] = claims
    caller = _iam_caller(event)
    if caller is not None:
        scope[VERIFIED_IAM_CALLER] = caller
    return scope


def _without_prefix(path: str, prefix: str) -> str:
    if path == prefix:
        return "/"
    if path.startswith(prefix + "/"):
        return path[len(prefix) :]
    return path


def _authorizer_claims(event: LambdaEvent) -> dict[str, Any] | None:
    authorizer = event["requestContext"].get("authorizer") or {}
    # HTTP API simple responses nest the context under "lambda"; REST API context is flat.
    context = authorizer.get("lambda") or authorizer
    value = context.get(CLAIMS_CONTEXT_KEY) if isinstance(context, dict) else None
    if not isinstance(value, str):
        return None
    try:
        claims = json.loads(value)
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def _iam_caller(event: LambdaEvent) -> ServiceCaller | None:
    """The signer API Gateway verified on an AWS_IAM route: REST API and HTTP API payload 1.0
    put it in `identity`, payload 2.0 in `authorizer.iam`. Both are null elsewhere."""
    context = event["requestContext"]
    authorizer = context.get("authorizer") or {}
    identity = authorizer.get("iam") if isinstance(authorizer, dict) else None
    if not isinstance(identity, dict):
        identity = context.get("identity") or {}
    key, arn = identity.get("accessKey"), identity.get("userArn")
    if isinstance(key, str) and key and isinstance(arn, str) and arn:
        return ServiceCaller(access_key_id=key, name=arn)
    return None


try:
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        # The runtime put its handler on the root logger; nimbus's replaces it, first, so that
        # init's own records are nimbus's lines too.
        configure_lambda(_settings().log_format, _settings().log_level)
        # On Lambda, build in the init phase: it runs at full CPU, and SnapStart snapshots it.
        _default_handler()
        gc.freeze()
finally:
    if _collecting:
        gc.enable()
