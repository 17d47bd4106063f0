"""The token signing key: given in the environment, or made once and kept in the data dir.
nimbus.ssm keeps one in AWS SSM instead."""

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
