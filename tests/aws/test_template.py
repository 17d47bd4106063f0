"""template.yaml against the code it deploys: the same tables, keys and indexes as the
DynamoDB backend creates, every route of the app behind API Gateway with the authorizer exactly
where the API asks for a token, and handlers that exist; and its operating parameters: JSON
logs with levels and a retention, X-Ray, the architecture, SnapStart, and protected tables on
a production stage. (cfn-lint checks the rest in scripts/check.)"""

import importlib
import subprocess
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


def _parameter(template: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(template["Parameters"][name])


def test_every_function_logs_json_with_levels_into_a_group_with_a_retention(
    template: dict[str, Any],
) -> None:
    level = _parameter(template, "LogLevel")
    assert level["Default"] == "INFO"
    assert set(level["AllowedValues"]) <= {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
    assert set(_parameter(template, "SystemLogLevel")["AllowedValues"]) <= {"DEBUG", "INFO", "WARN"}
    assert _parameter(template, "LogRetentionDays")["Default"] == 30
    groups = resources(template, "AWS::Logs::LogGroup")
    assert all(group["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in groups.values())

    functions = resources(template, "AWS::Serverless::Function")
    assert functions
    for name, props in functions.items():
        config = props["LoggingConfig"]
        assert config["LogFormat"] == "JSON", name
        assert config["ApplicationLogLevel"] == {"Ref": "LogLevel"}, name
        assert config["SystemLogLevel"] == {"Ref": "SystemLogLevel"}, name
        group = groups[config["LogGroup"]["Ref"]]  # the function's own, made by the stack
        assert group["LogGroupName"] == {
            "Fn::Sub": "/aws/lambda/" + props["FunctionName"]["Fn::Sub"]
        }


def test_xray_is_a_parameter_and_off_by_default(template: dict[str, Any]) -> None:
    tracing = _parameter(template, "Tracing")
    assert tracing["Default"] == "PassThrough"
    assert set(tracing["AllowedValues"]) == {"PassThrough", "Active"}
    assert template["Globals"]["Function"]["Tracing"] == {"Ref": "Tracing"}
    assert all(
        "Tracing" not in p for p in resources(template, "AWS::Serverless::Function").values()
    )
    assert template["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}
    for api in resources(template, "AWS::Serverless::Api").values():
        assert api["TracingEnabled"] == {"Fn::If": ["TracingActive", True, False]}


def test_the_architecture_is_a_parameter_the_build_follows(template: dict[str, Any]) -> None:
    architecture = _parameter(template, "Architecture")
    assert architecture["Default"] == "x86_64"
    assert set(architecture["AllowedValues"]) == {"x86_64", "arm64"}
    assert template["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    assert all(
        "Architectures" not in p for p in resources(template, "AWS::Serverless::Function").values()
    )
    # The package's wheels are the architecture's (scripts/check resolves both on PyPI).
    for arch, machine in (("x86_64", "x86_64"), ("arm64", "aarch64"), ("aarch64", "aarch64")):
        commands = subprocess.run(
            ["make", "--dry-run", "--silent", "lambda-package", f"LAMBDA_ARCH={arch}"],
            cwd=TEMPLATE.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        platforms = set(commands.split("--platform ")[1:])
        assert platforms, arch
        assert all(p.split()[0].endswith(f"_{machine}") for p in platforms), arch


def test_snapstart_is_an_option_of_the_api_function_behind_its_alias(
    template: dict[str, Any],
) -> None:
    """SnapStart snapshots published versions only, of Python 3.12 or later: SAM publishes one
    and moves the alias API Gateway calls to it (AutoPublishAlias); every property counts, and
    AWS::LanguageExtensions puts the parameters' values in before SAM hashes them."""
    snapstart = _parameter(template, "SnapStart")
    assert snapstart["Default"] == "false"
    assert template["Conditions"]["UseSnapStart"] == {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]}
    runtime = template["Globals"]["Function"]["Runtime"]
    assert tuple(int(n) for n in runtime.removeprefix("python").split(".")) >= (3, 12)
    api = template["Resources"]["ApiFunction"]["Properties"]
    assert api["SnapStart"] == {
        "ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}
    }
    assert isinstance(api["AutoPublishAlias"], str)
    assert api["AutoPublishAliasAllProperties"] is True
    assert api["AutoPublishCodeSha256"] == {"Ref": "Revision"}
    assert _parameter(template, "Revision")["Default"] == ""
    assert template["Transform"][0] == "AWS::LanguageExtensions"
    authorizer = template["Resources"]["AuthorizerFunction"]["Properties"]
    assert "SnapStart" not in authorizer
    assert "AutoPublishAlias" not in authorizer


def test_the_tables_of_a_production_stage_are_protected(template: dict[str, Any]) -> None:
    """Every table, whoever adds it: DynamoDB refuses to delete it, and deleting the stack
    leaves it. DeletionPolicy takes a condition only through AWS::LanguageExtensions, which
    must run before SAM."""
    assert _parameter(template, "DeletionProtection")["Default"] == "false"
    assert template["Conditions"]["Protected"] == {
        "Fn::Equals": [{"Ref": "DeletionProtection"}, "true"]
    }
    assert list(template["Transform"]) == [
        "AWS::LanguageExtensions",
        "AWS::Serverless-2016-10-31",
    ]
    tables = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    assert tables
    for name, table in tables.items():
        assert table["DeletionPolicy"] == {"Fn::If": ["Protected", "Retain", "Delete"]}, name
        assert table["UpdateReplacePolicy"] == "Retain", name
        assert table["Properties"]["DeletionProtectionEnabled"] == {
            "Fn::If": ["Protected", True, False]
        }, name
