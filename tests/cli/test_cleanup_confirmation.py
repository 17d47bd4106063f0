"""`nimbus resources create --cleanup` deletes data: only once someone has said yes."""

from pathlib import Path

import pytest

from tests.backends import BACKENDS, database_url
from tests.cli.terminal import terminal
from tests.support import PASSWORD, run_cli


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin",
            stdin=PASSWORD)  # fmt: skip
    return data_dir


def _alice_is_there(data_dir: Path, env: dict[str, str] | None = None) -> bool:
    return run_cli(data_dir, "users", "get", "alice", env=env).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_a_terminal_it_needs_yes(data_dir: Path, tmp_path: Path, backend: str) -> None:
    with database_url(backend, tmp_path) as url:
        env = {"NIMBUS_DATABASE_URL": url}
        run_cli(data_dir, "users", "create", "--username", "alice", "--password-stdin",
                stdin=PASSWORD, env=env)  # fmt: skip
        refused = run_cli(data_dir, "resources", "create", "--cleanup", stdin="y\n", env=env)
        assert refused.returncode == 1
        assert refused.stderr == (
            "Error: --cleanup deletes data: add --yes to confirm "
            "(standard input is not a terminal)\n"
        )
        assert refused.stdout == ""
        assert _alice_is_there(data_dir, env)

        cleaned = run_cli(data_dir, "resources", "create", "--cleanup", "--yes", env=env)
        assert cleaned.returncode == 0, cleaned.stderr
        assert "Resources deleted." in cleaned.stdout
        assert not _alice_is_there(data_dir, env)


def test_key_only_cleanup_needs_yes_too(data_dir: Path) -> None:
    refused = run_cli(data_dir, "resources", "create", "--cleanup", "--key-only")
    assert refused.returncode == 1
    assert "add --yes" in refused.stderr
    assert (data_dir / "secret.key").exists()
    cleaned = run_cli(data_dir, "resources", "create", "--cleanup", "--key-only", "--yes")
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (data_dir / "secret.key").exists()
    assert _alice_is_there(data_dir)  # the tables stay


@pytest.mark.parametrize("answer", ["n", "", "no", "sure"])
def test_on_a_terminal_anything_but_yes_leaves_the_data(data_dir: Path, answer: str) -> None:
    with terminal(data_dir, "resources", "create", "--cleanup") as screen:
        screen.expect(
            f"Delete every nimbus table and its data in sqlite:///{data_dir}/nimbus.db"
            f" and the signing key {data_dir}/secret.key? [y/N]"
        )
        screen.type(answer)
        assert screen.finish() == 1
    assert "Error: Aborted: nothing deleted." in screen.screen
    assert "Deleting" not in screen.screen
    assert (data_dir / "secret.key").exists()
    assert _alice_is_there(data_dir)


@pytest.mark.parametrize("answer", ["y", "YES"])
def test_on_a_terminal_yes_deletes_everything(data_dir: Path, answer: str) -> None:
    with terminal(data_dir, "resources", "create", "--cleanup") as screen:
        screen.expect("? [y/N]")
        screen.type(answer)
        assert screen.finish() == 0
    assert "Deleting table: users" in screen.screen
    assert "Resources deleted." in screen.screen
    assert not (data_dir / "secret.key").exists()
    assert not _alice_is_there(data_dir)  # (which makes the schema and key again)


def test_on_a_terminal_yes_skips_the_question(data_dir: Path) -> None:
    with terminal(data_dir, "resources", "create", "--cleanup", "--yes") as screen:
        assert screen.finish() == 0
    assert "[y/N]" not in screen.screen
    assert "Resources deleted." in screen.screen


def test_on_a_terminal_key_only_asks_about_the_key(data_dir: Path) -> None:
    with terminal(data_dir, "resources", "create", "--cleanup", "--key-only") as screen:
        screen.expect(f"Delete the signing key {data_dir}/secret.key? [y/N]")
        screen.type("n")
        assert screen.finish() == 1
    assert (data_dir / "secret.key").exists()
