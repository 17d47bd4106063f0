import gzip
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from pydantic import ValidationError

from nimbus.domain.errors import InvalidInput
from nimbus.security.password_policy import BLOCKLIST_FILE, PasswordPolicy, blocklist
from nimbus.settings import Settings

STRONG = "correct horse battery"


def refusal(policy: PasswordPolicy, password: str, **account: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        policy.check(password, **account)
    assert password not in caught.value.message
    return caught.value


def test_the_defaults_are_nists_8_to_1024_with_the_list_on() -> None:
    policy = PasswordPolicy()
    assert (policy.min_length, policy.max_length, policy.blocklist) == (8, 1024, True)
    policy.check("kz" * 4)
    policy.check("k" * 1024)
    short = refusal(policy, "k" * 7)
    assert (short.code, short.message) == (
        "password_too_short",
        "Choose a password of at least 8 characters",
    )
    long = refusal(policy, "k" * 1025)
    assert (long.code, long.message) == (
        "password_too_long",
        "Choose a password of at most 1024 characters",
    )


@pytest.mark.parametrize(
    ("password", "allowed"),
    [
        ("é" * 8, True),  # 16 bytes of UTF-8, 8 code points
        ("🔑" * 8, True),
        ("e\u0301" * 4, True),  # 4 letters as a person sees them, 8 code points
        ("🔑" * 7, False),  # 28 bytes, 7 code points
    ],
)
def test_length_counts_code_points(password: str, allowed: bool) -> None:
    if allowed:
        PasswordPolicy().check(password)
    else:
        assert refusal(PasswordPolicy(), password).code == "password_too_short"


def test_no_composition_rules() -> None:
    for password in ("aaaaaaaaaaaaaaaaaaaa", "only lower case words", "1234567898765432"):
        PasswordPolicy().check(password)


def test_configured_bounds_are_enforced_and_named() -> None:
    policy = PasswordPolicy(min_length=12, max_length=64)
    policy.check("k" * 12)
    policy.check("k" * 64)
    assert refusal(policy, "k" * 11).message == "Choose a password of at least 12 characters"
    assert refusal(policy, "k" * 65).message == "Choose a password of at most 64 characters"


@pytest.mark.parametrize(
    ("min_length", "max_length"), [(7, 1024), (8, 63), (8, 1025), (100, 99), (1025, 1025)]
)
def test_bounds_outside_nists_are_refused(min_length: int, max_length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        PasswordPolicy(min_length=min_length, max_length=max_length)


@pytest.mark.parametrize(
    "password", ["password123", "PassWord123", "SECRET123", "mypassword", "1paßword", "iloveyou"]
)
def test_a_common_password_is_refused_casefolded(password: str) -> None:
    error = refusal(PasswordPolicy(), password)
    assert (error.code, error.message) == (
        "password_too_common",
        "That password is too common; choose another",
    )
    PasswordPolicy(blocklist=False).check(password)


def test_the_list_holds_only_what_the_length_bound_lets_through() -> None:
    words = blocklist()
    assert len(words) == 8354
    assert {"password123", "secret123", "iloveyou", "qwertyuiop"} <= words
    assert min(len(word) for word in words) == 8
    assert all(word == word.casefold() for word in words)
    packaged = resources.files("nimbus.security") / BLOCKLIST_FILE
    assert len(packaged.read_bytes()) < 100_000


@pytest.mark.parametrize(
    "password",
    ["alice.smith", "ALICE.SMITH", "Alice.Smith@Example.com", "ALICE.SMITH@EXAMPLE.COM"],
)
def test_the_accounts_username_email_or_local_part_is_refused(password: str) -> None:
    for policy in (PasswordPolicy(), PasswordPolicy(blocklist=False)):
        error = refusal(policy, password, username="alice.smith", email="alice.smith@example.com")
        assert error.code == "password_matches_account"
        assert error.message == "Choose a password that is not your username or email"


def test_a_local_part_is_refused_under_another_username() -> None:
    error = refusal(PasswordPolicy(), "Denis.Ritchie", username="dr", email="denis.ritchie@x.io")
    assert error.code == "password_matches_account"


def test_a_password_containing_the_accounts_name_is_allowed() -> None:
    PasswordPolicy().check("alice.smith and her cat", username="alice.smith")
    PasswordPolicy().check("alice.smith", username="bob", email="bob@example.com")


@pytest.mark.parametrize("password", ["Nimbus2024!", "nimbus!!", "  NIMBUS 123", "123nimbus"])
def test_the_service_name_with_digits_or_punctuation_is_refused(password: str) -> None:
    for policy in (PasswordPolicy(), PasswordPolicy(blocklist=False)):
        assert refusal(policy, password).code == "password_too_common"


def test_a_phrase_with_the_service_name_is_allowed() -> None:
    PasswordPolicy().check("nimbus clouds over the bay")


def test_settings_default_to_nists_bounds_and_the_list() -> None:
    settings = Settings(env_file=None)
    assert (
        settings.password_min_length,
        settings.password_max_length,
        settings.password_blocklist,
    ) == (8, 1024, True)


def test_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIMBUS_PASSWORD_MIN_LENGTH", "15")
    monkeypatch.setenv("NIMBUS_PASSWORD_MAX_LENGTH", "64")
    monkeypatch.setenv("NIMBUS_PASSWORD_BLOCKLIST", "false")
    settings = Settings(env_file=None)
    assert (
        settings.password_min_length,
        settings.password_max_length,
        settings.password_blocklist,
    ) == (15, 64, False)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"NIMBUS_PASSWORD_MIN_LENGTH": "7"}, "password_min_length"),
        ({"NIMBUS_PASSWORD_MAX_LENGTH": "63"}, "password_max_length"),
        ({"NIMBUS_PASSWORD_MAX_LENGTH": "1025"}, "password_max_length"),
        (
            {"NIMBUS_PASSWORD_MIN_LENGTH": "100", "NIMBUS_PASSWORD_MAX_LENGTH": "64"},
            "NIMBUS_PASSWORD_MAX_LENGTH must be at least NIMBUS_PASSWORD_MIN_LENGTH",
        ),
    ],
)
def test_settings_outside_the_bounds_are_refused(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings(env_file=None)


# Records each open of the list's file, in a fresh interpreter: the app is built and
# served a request that checks no password, then a password is checked, twice.
_LAZY_LOAD = """
import sys
opened = []
sys.addaudithook(
    lambda event, args: opened.append(event)
    if event == "open" and "common-passwords" in str(args[0]) else None
)
from fastapi.testclient import TestClient
from nimbus.api.app import create_app
from nimbus.bootstrap import build
from nimbus.security import password_policy
from nimbus.settings import Settings

app = create_app(build(Settings(env_file=None, data_dir=sys.argv[1]), provision=False))
assert TestClient(app).get("/health").status_code == 200
print(len(opened), password_policy._blocklist is None, "gzip" in sys.modules)
password_policy.PasswordPolicy().check("correct horse battery")
password_policy.PasswordPolicy().check("another long passphrase")
print(len(opened), len(password_policy._blocklist or ()))
"""


def test_the_list_is_read_on_the_first_check_only(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _LAZY_LOAD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == ["0 True False", "1 8354"]


def test_the_packaged_file_is_gzip_text_one_entry_a_line() -> None:
    packaged = resources.files("nimbus.security") / BLOCKLIST_FILE
    lines = gzip.decompress(packaged.read_bytes()).decode().split("\n")
    assert lines[-1] == ""  # a final newline, no empty entry
    assert len(lines[:-1]) == len(set(lines[:-1])) == 8354
    notice = resources.files("nimbus.security") / "common-passwords.NOTICE"
    assert "Django Software Foundation" in notice.read_text()


def test_a_strong_passphrase_passes_with_its_account() -> None:
    PasswordPolicy().check(STRONG, username="alice", email="alice@example.com")
