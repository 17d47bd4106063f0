"""`nimbus audit list`, run as an operator runs it, on every backend: what the other commands
left in the trail, newest first, filtered, as lines or JSON."""

import json
import re
from pathlib import Path

import pytest

from tests.backends import BACKENDS, database_url
from tests.support import PASSWORD, run_cli


@pytest.mark.parametrize("backend", BACKENDS)
def test_audit_list_shows_what_the_operator_did_newest_first(tmp_path: Path, backend: str) -> None:
    data_dir = tmp_path / "data"
    with database_url(backend, tmp_path) as url:
        env = {"NIMBUS_DATABASE_URL": url}
        made = run_cli(data_dir, "users", "create", "--username", "root", "--admin",
                       "--password-stdin", stdin=PASSWORD, env=env)  # fmt: skip
        assert made.returncode == 0, made.stderr
        user_id = re.search(r"\(([0-9a-f-]{36})\)", made.stdout).group(1)  # type: ignore[union-attr]
        issued = run_cli(data_dir, "credentials", "create", "--name", "reporting", env=env)
        key_id = issued.stdout.split("\n")[0].partition("=")[2]
        assert run_cli(data_dir, "credentials", "revoke", key_id, env=env).returncode == 0

        listed = run_cli(data_dir, "audit", "list", env=env)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        assert [line.split()[1] for line in lines] == [
            "credential.revoked", "credential.created", "user.created"
        ]  # fmt: skip
        # Time, kind, actor ("-": the operator), subject, client, request id, detail.
        assert lines[2].split()[2:] == ["-", user_id, "-", "-", "role=admin", "username=root"]
        assert lines[0].split()[2:] == ["-", key_id, "-", "-", "name=reporting"]
        secret = issued.stdout.split("\n")[1].partition("=")[2]
        assert secret not in listed.stdout

        as_json = run_cli(data_dir, "audit", "list", "--json", "--user", "root", env=env)
        assert as_json.returncode == 0, as_json.stderr
        (event,) = [json.loads(line) for line in as_json.stdout.splitlines()]
        assert (event["kind"], event["actor"], event["subject"]) == ("user.created", None, user_id)
        assert event["detail"] == {"username": "root", "role": "admin"}

        by_kind = run_cli(data_dir, "audit", "list", "--kind", "credential.created", env=env)
        assert [line.split()[1] for line in by_kind.stdout.splitlines()] == ["credential.created"]
        one = run_cli(data_dir, "audit", "list", "--limit", "1", "--subject", key_id, env=env)
        assert [line.split()[1] for line in one.stdout.splitlines()] == ["credential.revoked"]

        none = run_cli(data_dir, "audit", "list", "--kind", "login.ok", env=env)
        assert (none.returncode, none.stdout, none.stderr) == (0, "", "No audit events.\n")
        unknown = run_cli(data_dir, "audit", "list", "--kind", "login.maybe", env=env)
        assert unknown.returncode == 2
        nobody = run_cli(data_dir, "audit", "list", "--user", "nobody", env=env)
        assert (nobody.returncode, nobody.stderr) == (1, "Error: No user named 'nobody'\n")
