"""`nimbus keys rotate` and `nimbus keys list`, run as an operator runs them: a rotation adds a
key that is published before it signs, each one is in the audit trail by its kid, and a key
sealed under another root key is shown as ignored."""

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from nimbus.bootstrap import build
from nimbus.security.key_ring import KeyRing, key_id
from nimbus.security.keys import load_or_create_key
from tests.support import make_settings, run_cli

ROTATED = re.compile(
    r"\AAdded signing key (?P<kid>[\w-]{16})\n"
    r"It signs from (?P<at>\S+) \(in 32 s\), once every process has read it;"
    r" tokens signed before verify until they expire.\n\Z"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def listed(data_dir: Path) -> list[list[str]]:
    result = run_cli(data_dir, "keys", "list")
    assert result.returncode == 0, result.stderr
    return [line.split() for line in result.stdout.splitlines()]


def test_before_any_rotation_the_root_keys_own_key_signs(data_dir: Path) -> None:
    [line] = listed(data_dir)
    root_kid = key_id(load_or_create_key(data_dir))
    assert line == [root_kid, "(the", "root", "key's)", "signing"]


def test_rotate_adds_a_key_that_signs_once_published_and_is_audited(data_dir: Path) -> None:
    first = run_cli(data_dir, "keys", "rotate")
    assert first.returncode == 0, first.stderr
    match = ROTATED.match(first.stdout)
    assert match is not None, first.stdout
    kid = match["kid"]
    root_kid = key_id(load_or_create_key(data_dir))
    [zero, new] = listed(data_dir)
    assert zero == [root_kid, "(the", "root", "key's)", "signing"]
    assert new[0] == kid
    assert new[2:] == ["next", "signs", "from", match["at"]]
    created = datetime.fromisoformat(new[1])
    assert datetime.fromisoformat(match["at"]) - created == timedelta(seconds=32)

    second = run_cli(data_dir, "keys", "rotate")
    assert second.returncode == 0, second.stderr
    other = second.stdout.split()[3]
    assert [line[0] for line in listed(data_dir)] == [root_kid, kid, other]

    trail = run_cli(data_dir, "audit", "list", "--kind", "key.rotated", "--json")
    events = [json.loads(line) for line in trail.stdout.splitlines()]
    assert [(e["actor"], e["subject"], e["detail"]) for e in events] == [
        (None, other, {"kid": other}),
        (None, kid, {"kid": kid}),
    ]


def test_a_key_another_root_key_sealed_is_listed_as_ignored(data_dir: Path) -> None:
    container = build(make_settings(data_dir))
    try:
        stranger = KeyRing(b"o" * 48, lifetime=timedelta(minutes=16)).new_key(
            datetime.now().astimezone() - timedelta(hours=1)
        )
        container.storage.signing_keys.add(stranger)
    finally:
        container.close()
    lines = listed(data_dir)
    assert lines[0][-1] == "signing"  # key 0 still signs
    assert lines[1][0] == stranger.kid
    assert lines[1][2:] == [
        "unusable",
        "does",
        "not",
        "open",
        "with",
        "this",
        "root",
        "key:",
        "ignored",
    ]


def test_keys_help_names_its_commands(data_dir: Path) -> None:
    shown = run_cli(data_dir, "keys", "--help")
    assert shown.returncode == 0
    assert "rotate" in shown.stdout
    assert "list" in shown.stdout
    assert "logs no one out" in " ".join(shown.stdout.split())
    assert "keys" in run_cli(data_dir, "--help").stdout
    assert not data_dir.exists()  # help reads no key and makes no store
