"""template.yaml against the code it deploys: the same tables, keys and indexes as the
DynamoDB backend creates, every route of the app behind API Gateway with the authorizer exactly
where the API asks for a token, and handlers that exist. (cfn-lint checks the rest in
scripts/check.)"""

import importlib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]
from fastapi.routing import APIRoute

from nimbus.api.app import create_app
from nimbus.api.routes import aliases
from nimbus.bootstrap import build
from nimbus.storage.dynamodb import TTL_ATTRIBUTE, DynamoStorage
from tests.aws.events import served_routes
from tests.support import make_settings

TEMPLATE = Path(__file__).parents[2] / "template.yaml"
PREFIX = "nimbus-${Stage}-"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded, errors = decode(str(TEMPLATE))
    assert not errors
    assert loaded is not None
    return dict(loaded)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(item) for item in items), key=str)


def test_the_tables_are_the_ones_the_backend_creates(template: dict[str, Any]) -> None:
    storage = DynamoStorage(region="us-east-1", table_prefix=PREFIX, endpoint_url=None)
    wanted = storage.table_definitions()
    tables = {
        props["TableName"]["Fn::Sub"]: props
        for props in resources(template, "AWS::DynamoDB::Table").values()
    }
    assert set(tables) == set(wanted)
    for name, definition in wanted.items():
        table = tables[name]
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["KeySchema"] == definition["KeySchema"], name
        assert _sorted(table["AttributeDefinitions"]) == _sorted(
            definition["AttributeDefinitions"]
        ), name
        indexes = [
            {k: index[k] for k in ("IndexName", "KeySchema", "Projection")}
            for index in table.get("GlobalSecondaryIndexes", [])
        ]
        assert indexes == definition.get("GlobalSecondaryIndexes", []), name
        ttl = table.get("TimeToLiveSpecification")
        if name in storage.tables.expiring():
            assert ttl == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}, name
        else:
            assert ttl is None, name


def test_every_route_is_deployed_behind_the_authorizer_its_openapi_entry_names(
    template: dict[str, Any], tmp_path: Path
) -> None:
    """A bearer-token route sits behind the nimbus authorizer, a SigV4 route behind AWS_IAM,
    and a public route behind nothing."""
    app = create_app(build(make_settings(tmp_path)))
    operations = app.openapi()["paths"]

    def authorizer(method: str, path: str) -> str | None:
        security = operations.get(path, {}).get(method.lower(), {}).get("security", [])
        schemes = {name for requirement in security for name in requirement}
        if not schemes:
            return None
        return "AWS_IAM" if schemes == {"sigv4"} else "NimbusAuthorizer"

    # The seeds' aliases reach the function through /{proxy+}, where the app checks their
    # tokens itself, as it does behind any other front door.
    aliased = {route.path for route in aliases.router.routes if isinstance(route, APIRoute)}
    expected = {
        (method, path): authorizer(method, path)
        for method, path in served_routes(app)
        if path not in aliased
    }
    expected[("ANY", "/{proxy+}")] = None  # the app's own 404 and 405, and the aliases
    assert "AWS_IAM" in expected.values()

    function = template["Resources"]["ApiFunction"]["Properties"]
    deployed = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"]): (
            event["Properties"].get("Auth", {}).get("Authorizer")
        )
        for event in function["Events"].values()
        if event["Type"] == "Api"
    }
    assert deployed == expected


def test_iam_routes_invoke_the_function_with_its_own_permission(template: dict[str, Any]) -> None:
    """Otherwise API Gateway calls Lambda with the caller's credentials, and every service
    that signs would need lambda:InvokeFunction too."""
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    iam = [e["Properties"]["Auth"] for e in events if "AWS_IAM" in str(e["Properties"])]
    assert iam
    assert all(auth == {"Authorizer": "AWS_IAM", "InvokeRole": "NONE"} for auth in iam)


def test_the_handlers_exist(template: dict[str, Any]) -> None:
    for name, props in resources(template, "AWS::Serverless::Function").items():
        module, _, attribute = props["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_the_api_function_only_reads_service_credentials(template: dict[str, Any]) -> None:
    """Issuing and revoking credentials is the CLI's job; the API checks signatures only."""
    props = template["Resources"]["ApiFunction"]["Properties"]
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    touching = [s for s in statements if "ServiceCredentialsTable" in str(s["Resource"])]
    assert touching
    assert all(s["Action"] == "dynamodb:GetItem" for s in touching)
