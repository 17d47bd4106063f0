"""scripts/check_wheels.py: every locked package has a wheel for each CPython the README names."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_wheels", ROOT / "scripts/check_wheels.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("check_wheels", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_wheels = load_checker()

BASE = "https://files.example/packages"
PROJECT = """\
version = 1
revision = 3
requires-python = ">=3.11"

[[package]]
name = "demo"
version = "0.1.0"
source = {{ editable = "." }}
dependencies = [
{dependencies}
]
"""


def package(
    name: str,
    *wheels: str,
    version: str = "1.0",
    fork: str = "",
    extra: str = "",
    sdist: bool = True,
) -> str:
    """A registry package with these wheels (their tags), locked for the Python versions of
    `fork` (a resolution marker) when the lock has several versions of it, and `extra` TOML."""
    text = f'\n[[package]]\nname = "{name}"\nversion = "{version}"\n'
    text += 'source = { registry = "https://pypi.org/simple" }\n'
    if fork:
        text += f'resolution-markers = ["{fork}"]\n'
    if sdist:
        text += f'sdist = {{ url = "{BASE}/{name}-{version}.tar.gz" }}\n'
    if wheels:
        stem = name.replace("-", "_")
        files = [f'{{ url = "{BASE}/{stem}-{version}-{tags}.whl" }}' for tags in wheels]
        text += f"wheels = [{', '.join(files)}]\n"
    return text + extra  # last: it may open a table


def linux(tags: str) -> list[str]:
    """The same interpreter and ABI tags on manylinux x86_64 and aarch64."""
    return [f"{tags}-manylinux_2_17_{arch}.manylinux2014_{arch}" for arch in ("x86_64", "aarch64")]


def check(tmp_path: Path, dependencies: list[str], *packages: str) -> list[str]:
    """The checker's problems with a lock of the project `demo` and these packages, checking
    that the command exits 1 exactly when there are some."""
    lock = tmp_path / "uv.lock"
    lines = "\n".join(f"    {dependency}," for dependency in dependencies)
    lock.write_text(PROJECT.format(dependencies=lines) + "".join(packages))
    problems: list[str] = check_wheels.problems(check_wheels.tomllib.loads(lock.read_text()))
    assert check_wheels.main([str(lock)]) == (1 if problems else 0)
    return problems


def test_a_pure_wheel_installs_everywhere(tmp_path: Path) -> None:
    assert check(tmp_path, ['{ name = "pure" }'], package("pure", "py3-none-any")) == []
    assert check(tmp_path, ['{ name = "old" }'], package("old", "py2.py3-none-any")) == []


def test_a_wheel_for_one_version_fails_on_the_next(tmp_path: Path) -> None:
    problems = check(tmp_path, ['{ name = "native" }'], package("native", *linux("cp312-cp312")))
    for python in ("3.11", "3.13", "3.14"):
        for arch in ("x86_64", "aarch64"):
            assert f"native 1.0: no wheel for CPython {python} manylinux {arch}" in problems
    assert not [line for line in problems if "3.12" in line]


def test_a_dependency_behind_a_python_marker_is_not_needed_past_it(tmp_path: Path) -> None:
    old_only = package("old-only", *linux("cp311-cp311"), *linux("cp312-cp312"))
    edge = '{ name = "old-only", marker = "python_full_version < \'3.13\'" }'
    assert check(tmp_path, [edge], old_only) == []
    # Without the marker, 3.13 and 3.14 would need it.
    assert len(check(tmp_path, ['{ name = "old-only" }'], old_only)) == 4


def test_an_abi3_wheel_serves_its_version_and_every_later_one(tmp_path: Path) -> None:
    stable = package("stable", *linux("cp38-abi3"))
    assert check(tmp_path, ['{ name = "stable" }'], stable) == []
    newer = package("newer", *linux("cp312-abi3"))
    problems = check(tmp_path, ['{ name = "newer" }'], newer)
    assert sorted(problems) == [
        "newer 1.0: no wheel for CPython 3.11 manylinux aarch64",
        "newer 1.0: no wheel for CPython 3.11 manylinux x86_64",
    ]


def test_free_threaded_and_other_platforms_do_not_count(tmp_path: Path) -> None:
    wheels = [
        "cp313-cp313t-manylinux_2_17_x86_64",
        "cp313-cp313-win_amd64",
        "cp313-cp313-musllinux_1_2_x86_64",
    ]
    problems = check(tmp_path, ['{ name = "odd" }'], package("odd", *wheels))
    assert "odd 1.0: no wheel for CPython 3.13 manylinux x86_64" in problems


def test_a_platform_wheel_for_any_python_counts(tmp_path: Path) -> None:
    tool = package("tool", *linux("py3-none"))
    assert check(tmp_path, ['{ name = "tool" }'], tool) == []


def test_a_wheel_needing_a_newer_glibc_fails(tmp_path: Path) -> None:
    wheels = [f"py3-none-manylinux_2_39_{arch}" for arch in ("x86_64", "aarch64")]
    lock_text = PROJECT.format(dependencies='    { name = "new-glibc" },')
    data = check_wheels.tomllib.loads(lock_text + package("new-glibc", *wheels))
    assert len(check_wheels.problems(data, glibc=(2, 36))) == 8
    assert check_wheels.problems(data, glibc=(2, 39)) == []


def test_an_sdist_alone_fails_unless_known_pure(tmp_path: Path) -> None:
    source_only = package("source-only", sdist=True)
    problems = check(tmp_path, ['{ name = "source-only" }'], source_only)
    assert len(problems) == 8
    assert problems[0].endswith("(only an sdist, not known to be pure Python)")
    data = check_wheels.tomllib.loads((tmp_path / "uv.lock").read_text())
    assert check_wheels.problems(data, known_pure=frozenset({"source-only"})) == []


def test_dependencies_of_dependencies_extras_and_groups_are_checked(tmp_path: Path) -> None:
    middle = package(
        "middle",
        "py3-none-any",
        extra='dependencies = [{ name = "deep" }]\n\n[package.optional-dependencies]\n'
        'fast = [{ name = "speedup" }]\n',
    )
    lock = (
        PROJECT.format(dependencies='    { name = "middle", extra = ["fast"] },')
        + '\n[package.dev-dependencies]\ndev = [{ name = "tester" }]\n'
        + middle
        + package("deep", *linux("cp311-cp311"))
        + package("speedup", *linux("cp311-cp311"))
        + package("tester", *linux("cp311-cp311"))
    )
    problems = check_wheels.problems(check_wheels.tomllib.loads(lock), pythons=["3.12"])
    assert (
        sorted(line.split(":")[0] for line in problems)
        == ["deep 1.0"] * 2 + ["speedup 1.0"] * 2 + ["tester 1.0"] * 2
    )


def test_an_empty_project_passes(tmp_path: Path) -> None:
    assert check(tmp_path, []) == []


def test_each_python_gets_the_fork_its_resolution_markers_pick(tmp_path: Path) -> None:
    before, after = "python_full_version < '3.13'", "python_full_version >= '3.13'"
    edges = [
        f'{{ name = "forked", version = "1.0", marker = "{before}" }}',
        f'{{ name = "forked", version = "2.0", marker = "{after}" }}',
        '{ name = "user" }',
    ]
    # 1.0 has no wheel for 3.13 or 3.14, where the lock has 2.0 instead.
    old = package("forked", *linux("cp311-cp311"), *linux("cp312-cp312"), fork=before)
    new = package("forked", "py3-none-any", version="2.0", fork=after)
    # A dependency that names no version gets the fork for the Python in hand.
    user = package("user", "py3-none-any", extra='dependencies = [{ name = "forked" }]\n')
    assert check(tmp_path, edges, old, new, user) == []
    broken = package("forked", *linux("cp311-cp311"), fork=before)
    assert sorted(check(tmp_path, edges, broken, new, user)) == [
        "forked 1.0: no wheel for CPython 3.12 manylinux aarch64",
        "forked 1.0: no wheel for CPython 3.12 manylinux x86_64",
    ]


def test_the_project_lock_installs_from_wheels_on_every_python() -> None:
    with (ROOT / "uv.lock").open("rb") as file:
        data = check_wheels.tomllib.load(file)
    assert check_wheels.problems(data) == []


@pytest.mark.parametrize("python", ["3.11", "3.12", "3.13", "3.14"])
def test_the_project_lock_reaches_its_direct_dependencies(python: str) -> None:
    with (ROOT / "uv.lock").open("rb") as file:
        lock = check_wheels.Lock(check_wheels.tomllib.load(file))
    env = check_wheels.Target(python, f"{python}.0", "x86_64").environment()
    names = {package["name"] for package in lock.reached(env)}
    assert {"fastapi", "psycopg-binary", "botocore", "pytest", "uvloop"} <= names
    assert "pywin32" not in names
