"""The sample events in events/, one per API route in template.yaml, for `sam local invoke`.

Regenerate with `.venv/bin/python -m tests.aws.sample_events`; a test keeps them in step with
the template. Routes behind the authorizer carry a placeholder token: put a real one (from
POST /login) in place of ACCESS_TOKEN, and a real uid, user id or session id in place of the
path's; the token of a mailed link in place of RESET_TOKEN or VERIFICATION_TOKEN, and the one /login
answers an account with a second factor in place of MFA_TOKEN, with a code from its app; the web
app's assets, the version in the page's script URLs in place of ASSET_VERSION.
Routes behind AWS_IAM carry the identity API Gateway passes on once it has checked a signature.
"""

import json
import re
from typing import Any

from tests.aws.events import EVENTS, Event, rest_event

TOKEN = "Bearer ACCESS_TOKEN"
PASSWORD = "correct horse battery"
PATH_VALUES = {
    "{uid}": "TODO_UID",
    "{user_id}": "USER_ID",
    "{product_id}": "PRODUCT_ID",
    "{proxy+}": "swagger-ui.css",
    "{version}": "ASSET_VERSION",
    "{name}": "app.css",
    "{session_id}": "SESSION_ID",
    "{passkey_id}": "PASSKEY_ID",
}
# What a browser's PublicKeyCredential.toJSON() gives, for a ceremony's challenge token.
CREDENTIAL = {
    "id": "CREDENTIAL_ID",
    "rawId": "CREDENTIAL_ID",
    "type": "public-key",
    "response": {"clientDataJSON": "CLIENT_DATA", "authenticatorData": "AUTH_DATA"},
    "clientExtensionResults": {},
}
JSON_BODIES: dict[str, Any] = {
    "SignUp": {"username": "alice", "password": PASSWORD, "email": "alice@example.com"},
    "Login": {"username": "alice", "password": PASSWORD},
    "Refresh": {"refresh_token": "REFRESH_TOKEN"},
    "ForgotPassword": {"email": "alice@example.com"},
    "ResetPassword": {"token": "RESET_TOKEN", "password": "a brand new passphrase"},
    "VerifyEmail": {"token": "VERIFICATION_TOKEN"},
    "SendVerification": {"email": "alice@example.com"},
    "SecondStep": {"mfa_token": "MFA_TOKEN", "code": "123456"},
    "StartTotp": {"password": PASSWORD},
    "PasskeyOptions": {"password": PASSWORD},
    "ConfirmTotp": {"code": "123456"},
    "StopTotp": {"password": PASSWORD, "code": "123456"},
    "AddPasskey": {
        "challenge_token": "CHALLENGE_TOKEN",
        "credential": CREDENTIAL,
        "name": "Laptop",
    },
    "RemovePasskey": {"password": PASSWORD},
    "PasskeyLogin": {"challenge_token": "CHALLENGE_TOKEN", "credential": CREDENTIAL},
    "SecondStepPasskeyOptions": {"mfa_token": "MFA_TOKEN"},
    "AddTodo": {"description": "Buy milk", "metadata": {"priority": "high"}},
    "ReplaceTodo": {"description": "Buy oat milk", "state": "started"},
    "ChangeTodo": {"state": "completed"},
    "ReplaceUser": {"email": "alice@example.com", "name": "Alice"},
    "ChangeUser": {"name": "Alice L."},
    "PostMessage": {"text": "Hello, board"},
    "AddProduct": {"name": "Oak Desk Lamp", "description": "Warm light", "price": 24.99},
    "ReplaceProduct": {"name": "Oak Desk Lamp", "price": 19.99, "stock": 12},
    "ChangeProduct": {"stock": 11},
}
IAM_IDENTITY = {
    "accessKey": "ASIAIOSFODNN7EXAMPLE",
    "accountId": "123456789012",
    "caller": "AIDAJQABLZS4A3QDU576Q",
    "user": "AIDAJQABLZS4A3QDU576Q",
    "userArn": "arn:aws:iam::123456789012:user/inventory-page",
}
FORM_BODIES = {"Token": f"grant_type=password&username=alice&password={PASSWORD}"}


def file_name(event_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", event_name).lower() + ".json"


def sample_event(name: str, method: str, path: str, authorizer: str | None) -> Event:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    if path == "/swagger-ui.css":  # the catch-all route: any path the app does not serve
        path = "/nowhere"
    headers = [("Accept", "application/json")]
    body = b""
    if name in JSON_BODIES:
        headers.append(("Content-Type", "application/json"))
        body = json.dumps(JSON_BODIES[name]).encode()
    elif name in FORM_BODIES:
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = FORM_BODIES[name].encode()
    if authorizer == "NimbusAuthorizer":
        headers.append(("Authorization", TOKEN))
    event = rest_event("GET" if method == "ANY" else method, path, headers=headers, body=body)
    if authorizer == "AWS_IAM":
        event["requestContext"]["identity"].update(IAM_IDENTITY)
    return event


def expected_files(api_events: dict[str, Any]) -> dict[str, Event]:
    files = {}
    for name, event in api_events.items():
        props = event["Properties"]
        files[file_name(name)] = sample_event(
            name,
            str(props["Method"]).upper(),
            str(props["Path"]),
            props.get("Auth", {}).get("Authorizer"),
        )
    return files


def render(event: Event) -> str:
    return json.dumps(event, indent=2) + "\n"


def api_events() -> dict[str, Any]:
    from cfnlint.decode import decode  # type: ignore[import-untyped]

    template, errors = decode(str(EVENTS.parent / "template.yaml"))
    assert not errors
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]
    return {name: event for name, event in events.items() if event["Type"] == "Api"}


def main() -> None:
    for name, event in expected_files(api_events()).items():
        (EVENTS / name).write_text(render(event))
    print(f"wrote {len(api_events())} events to {EVENTS}")


if __name__ == "__main__":
    main()
