import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nimbus.security.keys import KEY_FILE, check_configured_key, load_or_create_key


def test_a_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "data")
    assert len(key) == 64
    assert load_or_create_key(tmp_path / "data") == key
    mode = stat.S_IMODE((tmp_path / "data" / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert [path.name for path in (tmp_path / "data").iterdir()] == [KEY_FILE]


def test_workers_racing_to_make_the_key_all_get_the_same_one(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        keys = set(pool.map(lambda _: load_or_create_key(tmp_path), range(64)))
    assert len(keys) == 1


@pytest.mark.parametrize("value", ["changeme", "secret", "short-but-not-placeholder"])
def test_weak_configured_keys_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="NIMBUS_SECRET_KEY"):
        check_configured_key(value)


def test_a_long_random_key_is_accepted() -> None:
    assert check_configured_key("x" * 40) == b"x" * 40
