"""The signing key kept in an AWS SSM SecureString parameter (NIMBUS_SECRET_KEY=ssm:/NAME):
read, made and removed through nimbus's own AWS client; and the first administrator's
password, read from one (NIMBUS_FIRST_ADMIN_PASSWORD=ssm:/NAME)."""

import base64
import secrets

from nimbus.aws import AwsError, AwsUnreachable, ssm
from nimbus.domain.errors import Unavailable
from nimbus.security.keys import MIN_KEY_BYTES


def load_ssm_key(name: str, region: str) -> bytes:
    """The key kept in an SSM SecureString parameter (base64, as `resources create` writes).
    ValueError if there is none, or a weak one; Unavailable if SSM cannot be asked."""
    value = load_ssm_secret(name, region, missing="run nimbus resources create")
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        key = value.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"SSM parameter {name} holds fewer than {MIN_KEY_BYTES} bytes")
    return key


def load_ssm_secret(name: str, region: str, *, missing: str) -> str:
    """The value of an SSM SecureString parameter. ValueError if there is none (its message
    ends with `missing`, what to do); Unavailable if SSM cannot be asked."""
    try:
        answer = ssm(region).call("GetParameter", Name=name, WithDecryption=True)
    except AwsError as exc:
        if exc.code == "ParameterNotFound":
            raise ValueError(f"SSM parameter {name} does not exist: {missing}") from exc
        raise Unavailable(f"SSM parameter {name} cannot be read: {exc}") from exc
    except AwsUnreachable as exc:
        raise Unavailable(f"SSM parameter {name} cannot be read: {exc}") from exc
    return str(answer["Parameter"]["Value"])


def create_ssm_key(name: str, region: str) -> bool:
    """Store a new random key in SSM unless one is there; True if this call made it."""
    value = base64.b64encode(secrets.token_bytes(64)).decode()
    try:
        ssm(region).call(
            "PutParameter", Name=name, Value=value, Type="SecureString", Overwrite=False
        )
    except AwsError as exc:
        if exc.code == "ParameterAlreadyExists":
            return False
        raise
    return True


def delete_ssm_key(name: str, region: str) -> bool:
    try:
        ssm(region).call("DeleteParameter", Name=name)
    except AwsError as exc:
        if exc.code == "ParameterNotFound":
            return False
        raise
    return True
