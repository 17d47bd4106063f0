"""The token signing key: given in the environment, or made once and kept in the data dir."""

import base64
import contextlib
import os
import secrets
from pathlib import Path

KEY_FILE = "secret.key"
MIN_KEY_BYTES = 32
_PLACEHOLDERS = {"changeme", "change-me", "changethis", "secret", "password", "your-secret-key"}


def check_configured_key(value: str) -> bytes:
    """The bytes of a key given in NIMBUS_SECRET_KEY; ValueError if it is weak."""
    if ssm_parameter(value) is not None:
        raise ValueError("an ssm: key is read from SSM, not used as it is")
    if value.strip().lower() in _PLACEHOLDERS:
        raise ValueError("NIMBUS_SECRET_KEY is a placeholder; set a random value")
    key = value.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"NIMBUS_SECRET_KEY must be at least {MIN_KEY_BYTES} bytes")
    return key


def load_or_create_key(data_dir: Path) -> bytes:
    """The key kept in `data_dir`, made on first call; several workers racing get one key."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(base64.urlsafe_b64encode(secrets.token_bytes(64)).decode())
            out.flush()
            os.fsync(out.fileno())
        # link() fails if the key already exists: whoever linked first wins, everyone reads it.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink()
    return base64.urlsafe_b64decode(path.read_text().strip())


SSM_PREFIX = "ssm:"


def ssm_parameter(value: str) -> str | None:
    """The parameter name in NIMBUS_SECRET_KEY=ssm:/NAME, or None for a literal key."""
    return value[len(SSM_PREFIX) :] if value.startswith(SSM_PREFIX) else None


def load_ssm_key(name: str, region: str) -> bytes:
    """The key kept in an SSM SecureString parameter (base64, as `resources create` writes)."""
    from nimbus.aws import AwsError, ssm

    try:
        answer = ssm(region).call("GetParameter", Name=name, WithDecryption=True)
    except AwsError as exc:
        if exc.code == "ParameterNotFound":
            raise ValueError(
                f"SSM parameter {name} does not exist: run nimbus resources create"
            ) from None
        raise
    value = str(answer["Parameter"]["Value"])
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        key = value.encode()
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"SSM parameter {name} holds fewer than {MIN_KEY_BYTES} bytes")
    return key


def create_ssm_key(name: str, region: str) -> bool:
    """Store a new random key in SSM unless one is there; True if this call made it."""
    from nimbus.aws import AwsError, ssm

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
    from nimbus.aws import AwsError, ssm

    try:
        ssm(region).call("DeleteParameter", Name=name)
    except AwsError as exc:
        if exc.code == "ParameterNotFound":
            return False
        raise
    return True
