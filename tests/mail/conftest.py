from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mail.servers import Certificates, SmtpServer, make_certificates, smtp_server


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture
def plain_server() -> Iterator[SmtpServer]:
    """aiosmtpd without TLS or AUTH, as a mail catcher on a laptop is."""
    with smtp_server() as server:
        yield server


@pytest.fixture
def starttls_server(certificates: Certificates) -> Iterator[SmtpServer]:
    """STARTTLS required, then AUTH required: a submission server (port 587)."""
    with smtp_server(starttls=certificates.server_context(), auth=True) as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
