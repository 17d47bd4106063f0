"""template.yaml against the code it deploys: the same tables, keys and indexes as the
DynamoDB backend creates, every route of the app behind API Gateway with the authorizer exactly
where the API asks for a token, and handlers that exist; and its operating parameters: JSON
logs with levels and a retention, X-Ray, the architecture, SnapStart, protected tables on
a production stage, mail through SES from the sender's domain only, and the first
administrator's password kept in SSM. (cfn-lint checks the rest in scripts/check.)"""

import importlib
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode  # type: ignore[import-untyped]
from fastapi.routing import APIRoute
from pydantic import ValidationError

from nimbus.api.app import create_app
from nimbus.api.routes import aliases
from nimbus.api.routes.accounts import INLINE_ANSWER_FLOOR
from nimbus.bootstrap import build, mail_queue
from nimbus.mail.outbox import OutboxMailer
from nimbus.mail.ses import SesMailer
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


def _resolve(value: Any, parameters: dict[str, str]) -> Any:
    """`value` with the intrinsic functions the mail settings use worked out, as CloudFormation
    would for these parameter values (the pseudo parameters stay as they are)."""
    if isinstance(value, list):
        return [_resolve(item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return parameters.get(value["Ref"], f"${{{value['Ref']}}}")
    if set(value) == {"Fn::Split"}:
        delimiter, source = value["Fn::Split"]
        return _resolve(source, parameters).split(delimiter)
    if set(value) == {"Fn::Select"}:
        index, items = value["Fn::Select"]
        return _resolve(items, parameters)[index]
    if set(value) == {"Fn::Sub"}:
        text, names = value["Fn::Sub"], {}
        if isinstance(text, list):
            text, names = text[0], {k: _resolve(v, parameters) for k, v in text[1].items()}
        for name, replacement in (parameters | names).items():
            text = text.replace(f"${{{name}}}", replacement)
        return text
    return {key: _resolve(item, parameters) for key, item in value.items()}


def _mail_statement(template: dict[str, Any]) -> dict[str, Any]:
    props = template["Resources"]["ApiFunction"]["Properties"]
    statements = [s for policy in props["Policies"] for s in policy["Statement"]]
    [statement] = [s for s in statements if "ses:SendEmail" in s["Action"]]
    return dict(statement)


def test_the_mail_settings_are_parameters_of_the_api_function_alone(
    template: dict[str, Any], tmp_path: Path
) -> None:
    for name in ("MailUrl", "MailFrom", "PublicUrl"):
        assert _parameter(template, name)["Default"] == "", name
    assert template["Conditions"]["HasMailFrom"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "MailFrom"}, ""]}]
    }
    api = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert api["NIMBUS_MAIL_URL"] == {"Ref": "MailUrl"}
    assert api["NIMBUS_PUBLIC_URL"] == {"Ref": "PublicUrl"}
    assert api["NIMBUS_MAIL_FROM"] == {
        "Fn::If": ["HasMailFrom", {"Ref": "MailFrom"}, {"Ref": "AWS::NoValue"}]
    }
    assert "Environment" not in template["Resources"]["AuthorizerFunction"]["Properties"]
    assert not any(
        "MAIL" in name for name in template["Globals"]["Function"]["Environment"]["Variables"]
    )

    # What the function's settings make of the values: the defaults (the outbox, which no
    # one reads on Lambda) and SES's.
    def mailer(**env: str) -> object:
        variables = {"NIMBUS_MAIL_TIMEOUT": api["NIMBUS_MAIL_TIMEOUT"], **env}
        with pytest.MonkeyPatch.context() as patch:
            for name, value in variables.items():
                patch.setenv(name, value)
            settings = make_settings(tmp_path)
        return mail_queue(settings, inline=True).mailer

    assert isinstance(mailer(NIMBUS_MAIL_URL="", NIMBUS_PUBLIC_URL=""), OutboxMailer)
    ses = mailer(
        NIMBUS_MAIL_URL="ses://",
        NIMBUS_MAIL_FROM="Nimbus <no-reply@mail.example.com>",
        NIMBUS_PUBLIC_URL="https://app.example.com",
    )
    assert isinstance(ses, SesMailer)
    with pytest.raises(ValidationError, match="NIMBUS_PUBLIC_URL is required"):
        mailer(NIMBUS_MAIL_URL="ses://", NIMBUS_PUBLIC_URL="")

    # CloudFormation's patterns, as simple as these, read the same in Python's re.
    url, public = _parameter(template, "MailUrl"), _parameter(template, "PublicUrl")
    for value in ("", "ses://", "ses://?configuration_set=mails", "smtps://u:p@smtp.example.com"):
        assert re.fullmatch(url["AllowedPattern"], value), value
    for value in ("file://", "file:///tmp/outbox", "ses:// "):
        assert not re.fullmatch(url["AllowedPattern"], value), value
    for value in ("", "https://app.example.com", "https://example.com/app"):
        assert re.fullmatch(public["AllowedPattern"], value), value
    for value in ("app.example.com", "https://app.example.com/?next=x", "https://u@example.com"):
        assert not re.fullmatch(public["AllowedPattern"], value), value


def test_a_mail_send_gives_up_by_the_answer_floor_and_well_within_the_timeout(
    template: dict[str, Any],
) -> None:
    """On Lambda the send happens before the answer: bounded within the floor of a link asked
    for, with room for the request's own work, a slow SES cannot make a known account's answer
    later than an unknown one's (tests/aws/test_lambda_accounts.py times it)."""
    api = template["Resources"]["ApiFunction"]["Properties"]
    timeout = float(api["Environment"]["Variables"]["NIMBUS_MAIL_TIMEOUT"])
    assert 0 < timeout <= INLINE_ANSWER_FLOOR - 0.25
    assert timeout * 3 < api.get("Timeout", template["Globals"]["Function"]["Timeout"])


@pytest.mark.parametrize(
    ("mail_from", "domain"),
    [
        ("Nimbus <no-reply@mail.example.com>", "mail.example.com"),
        ("no-reply@example.org", "example.org"),
        ("", ""),
    ],
)
def test_the_api_function_may_send_from_mail_froms_domain_only(
    template: dict[str, Any], mail_from: str, domain: str
) -> None:
    statement = _mail_statement(template)
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["ses:SendEmail", "ses:SendRawEmail"]
    resources = _resolve(statement["Resource"], {"MailFrom": mail_from})
    arn = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}"
    assert resources == [
        f"{arn}:identity/{domain}",  # the domain's identity
        f"{arn}:identity/*@{domain}",  # or an address of it verified on its own
        f"{arn}:configuration-set/*",
    ]


def test_the_first_administrators_password_stays_in_ssm(
    template: dict[str, Any], tmp_path: Path
) -> None:
    """FirstAdminUsername is a parameter; its password is no parameter at all (NoEcho would
    still leave it in the function's configuration), but a SecureString the function reads."""
    assert _parameter(template, "FirstAdminUsername")["Default"] == ""
    assert not any("password" in name.lower() for name in template["Parameters"])
    api = template["Resources"]["ApiFunction"]["Properties"]
    variables = api["Environment"]["Variables"]
    assert variables["NIMBUS_FIRST_ADMIN_USERNAME"] == {"Ref": "FirstAdminUsername"}
    parameter = "/nimbus/${Stage}/first-admin-password"
    assert variables["NIMBUS_FIRST_ADMIN_PASSWORD"] == {
        "Fn::If": ["HasFirstAdmin", {"Fn::Sub": f"ssm:{parameter}"}, ""]
    }
    assert template["Conditions"]["HasFirstAdmin"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "FirstAdminUsername"}, ""]}]
    }
    statements = [s for policy in api["Policies"] for s in policy["Statement"]]
    (reads,) = [s for s in statements if parameter in str(s["Resource"])]
    assert reads["Action"] == "ssm:GetParameter"
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    assert not any("FIRST_ADMIN" in name for name in shared)  # not the authorizer's

    # What the function's settings make of both ways the template sets them.
    def settings(**env: str) -> Any:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            return make_settings(tmp_path)

    none = settings(NIMBUS_FIRST_ADMIN_USERNAME="", NIMBUS_FIRST_ADMIN_PASSWORD="")
    assert (none.first_admin_username, none.first_admin_password) == (None, None)
    some = settings(
        NIMBUS_FIRST_ADMIN_USERNAME="root",
        NIMBUS_FIRST_ADMIN_PASSWORD="ssm:/nimbus/dev/first-admin-password",
    )
    assert some.first_admin_username == "root"
    pattern = _parameter(template, "FirstAdminUsername")["AllowedPattern"]
    for name in ("", "root", "ops.team@example.com", "a" * 64):
        assert re.fullmatch(pattern, name), name
    for name in ("two words", "-root", "a" * 65):
        assert not re.fullmatch(pattern, name), name


def test_both_functions_read_the_signing_keys_and_neither_writes_them(
    template: dict[str, Any],
) -> None:
    """The authorizer verifies tokens by kid too; `nimbus keys rotate` adds the keys."""
    for name in ("ApiFunction", "AuthorizerFunction"):
        props = template["Resources"][name]["Properties"]
        statements = [s for policy in props["Policies"] for s in policy["Statement"]]
        touching = [s for s in statements if "SigningKeysTable" in str(s["Resource"])]
        assert [s["Action"] for s in touching] == ["dynamodb:Scan"], name


def test_the_lambda_package_leaves_pydantic_v1_out() -> None:
    """FastAPI imports pydantic.v1 with a first route's models only to refuse v1's; the package
    has none of it (tests/conftest.py runs every test without it)."""
    commands = subprocess.run(
        ["make", "--dry-run", "--silent", "lambda-package", "ARTIFACTS_DIR=/tmp/package"],
        cwd=TEMPLATE.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    install = next(i for i, line in enumerate(commands) if "-r lambda/requirements.txt" in line)
    assert 'rm -rf "/tmp/package/pydantic/v1"' in commands[install + 1 :]
