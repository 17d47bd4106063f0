"""Check that uv.lock installs from wheels on every CPython the README promises.

For each target CPython (3.11 to 3.14) on Linux x86_64 and aarch64, walk the lock's dependency
graph from the project (its dependencies, every extra and every dependency group), keeping only
the edges whose marker holds for that interpreter, and check that each package version reached
has a wheel it can install: a pure wheel (py3-none-any), a pyXY/py3 wheel for the platform, an
abi3 wheel for that version or an older one, or a wheel built for exactly that version, on a
manylinux glibc no newer than --glibc. A package that has only an sdist fails unless it is
known to be pure Python (KNOWN_PURE_SDISTS): a build would need a compiler and headers.

Prints one line per problem, for example
    example 1.0: no wheel for CPython 3.13 manylinux x86_64
and exits 1 if there is any. Run by scripts/check through scripts/check-wheels.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.markers import Marker
from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

PYTHONS = ("3.11", "3.12", "3.13", "3.14")
ARCHES = ("x86_64", "aarch64")
# Debian 12's glibc, the oldest on the project's machines (Debian 13 and ubuntu-latest are newer).
GLIBC = (2, 36)
# Packages published only as an sdist that are pure Python, so that uv builds them anywhere.
KNOWN_PURE_SDISTS: frozenset[str] = frozenset()

Package = Mapping[str, Any]


@dataclass(frozen=True)
class Target:
    """One interpreter and platform that the lock must install on."""

    python: str  # "3.13"
    full_version: str  # "3.13.0": markers may split a minor version (python_full_version)
    arch: str  # "x86_64"

    def environment(self) -> dict[str, str]:
        """The marker environment of CPython at this version on Linux, this architecture."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.full_version,
            "os_name": "posix",
            "platform_machine": self.arch,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": self.full_version,
            "python_version": self.python,
            "sys_platform": "linux",
            "extra": "",
        }

    def describe(self) -> str:
        return f"CPython {self.python} manylinux {self.arch}"


def manylinux_platforms(arch: str, glibc: tuple[int, int] = GLIBC) -> list[str]:
    """The manylinux platform tags a glibc of this version accepts, newest first."""
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    oldest = 17 if arch == "aarch64" else 5  # manylinux's first aarch64 glibc
    platforms = []
    for minor in range(glibc[1], oldest - 1, -1):
        platforms.append(f"manylinux_{glibc[0]}_{minor}_{arch}")
        if minor in legacy:
            platforms.append(f"{legacy[minor]}_{arch}")
    return platforms


def supported_tags(python: str, arch: str, glibc: tuple[int, int] = GLIBC) -> frozenset[Tag]:
    """Every wheel tag that CPython `python` (not free-threaded) installs on manylinux `arch`."""
    version = tuple(int(part) for part in python.split("."))
    platforms = manylinux_platforms(arch, glibc)
    abi = f"cp{version[0]}{version[1]}"
    return frozenset(
        [
            *cpython_tags(version, abis=[abi], platforms=platforms),
            *compatible_tags(version, interpreter=abi, platforms=platforms),
        ]
    )


def full_versions(python: str, markers: Iterable[str]) -> list[str]:
    """Patch versions of `python` that between them meet every python_full_version split.

    The lock can fork inside a minor version (uv.lock has "python_full_version < '3.11.5'"),
    so test the first patch release and both sides of each boundary the markers name.
    """
    versions = {f"{python}.0"}
    prefix = f"{python}."
    for text in markers:
        for word in text.replace('"', "'").split("'"):
            if word.startswith(prefix) and word[len(prefix) :].isdigit():
                patch = int(word[len(prefix) :])
                versions.update({f"{python}.{patch}", f"{python}.{patch + 1}"})
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")))


@functools.cache
def marker(text: str) -> Marker:
    return Marker(text)


def holds(text: str, env: Mapping[str, str]) -> bool:
    """Whether a marker from the lock holds in this environment."""
    return marker(text).evaluate(dict(env))


def wheel_filename(wheel: Mapping[str, Any]) -> str:
    if "filename" in wheel:
        return str(wheel["filename"])
    location = str(wheel.get("url") or wheel.get("path") or "")
    return unquote(urlsplit(location).path.rsplit("/", 1)[-1])


def has_wheel(package: Package, tags: frozenset[Tag]) -> bool:
    for wheel in package.get("wheels", []):
        try:
            _, _, _, wheel_tags = parse_wheel_filename(wheel_filename(wheel))
        except InvalidWheelFilename:
            continue  # no installer would take it
        if wheel_tags & tags:
            return True
    return False


def is_local(package: Package) -> bool:
    """The project itself or another package from this machine, built by uv, not downloaded."""
    source = package.get("source", {})
    return any(kind in source for kind in ("editable", "virtual", "directory", "path"))


class Lock:
    """uv.lock's packages, with the fork of each package that a marker environment selects."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.packages: dict[str, list[Package]] = {}
        for package in data.get("package", []):
            self.packages.setdefault(canonicalize_name(package["name"]), []).append(package)

    def markers(self) -> Iterator[str]:
        """Every marker the lock holds, to find where it splits a Python version."""
        yield from self.data.get("resolution-markers", [])
        for versions in self.packages.values():
            for package in versions:
                yield from package.get("resolution-markers", [])
                for dependency in dependencies(package, all_extras=True):
                    if "marker" in dependency:
                        yield dependency["marker"]

    def resolve(self, dependency: Mapping[str, Any], env: Mapping[str, str]) -> Package:
        name = canonicalize_name(dependency["name"])
        candidates = self.packages.get(name)
        if not candidates:
            raise LookupError(f"{dependency['name']} is a dependency but not in the lock")
        if "version" in dependency:
            candidates = [p for p in candidates if p["version"] == dependency["version"]]
        if len(candidates) == 1:
            return candidates[0]
        matching = [
            package
            for package in candidates
            if any(holds(m, env) for m in package.get("resolution-markers", []))
        ]
        if len(matching) != 1:
            versions = ", ".join(p["version"] for p in matching or candidates)
            raise LookupError(
                f"{dependency['name']}: cannot tell which of {versions} the lock picks here"
            )
        return matching[0]

    def projects(self) -> list[Package]:
        """The project (and any workspace members): the lock's editable and virtual packages."""
        roots = [
            package
            for versions in self.packages.values()
            for package in versions
            if "editable" in package.get("source", {}) or "virtual" in package.get("source", {})
        ]
        if not roots:
            raise LookupError("no project (editable or virtual package) in the lock")
        return roots

    def reached(self, env: Mapping[str, str]) -> list[Package]:
        """Each package the projects install in this environment, with every extra and group."""
        roots = self.projects()
        seen: dict[tuple[str, str], Package] = {}
        # (name, version, extra): None for the package's own dependencies.
        done: set[tuple[str, str, str | None]] = set()
        stack: list[Mapping[str, Any]] = [
            edge for root in roots for edge in dependencies(root, all_extras=True, groups=True)
        ]
        for root in roots:
            done.add((canonicalize_name(root["name"]), root["version"], None))
        while stack:
            edge = stack.pop()
            condition = edge.get("marker")
            if condition and not holds(condition, env):
                continue
            package = self.resolve(edge, env)
            key = (canonicalize_name(package["name"]), package["version"])
            seen[key] = package
            for extra in [None, *edge.get("extra", [])]:
                if (*key, extra) in done:
                    continue
                done.add((*key, extra))
                if extra is None:
                    stack += package.get("dependencies", [])
                else:
                    stack += package.get("optional-dependencies", {}).get(extra, [])
        return [package for package in seen.values() if package not in roots]


def dependencies(
    package: Package, *, all_extras: bool = False, groups: bool = False
) -> Iterator[Mapping[str, Any]]:
    yield from package.get("dependencies", [])
    if all_extras:
        for edges in package.get("optional-dependencies", {}).values():
            yield from edges
    if groups:
        for edges in package.get("dev-dependencies", {}).values():
            yield from edges


def problems(
    lock_data: Mapping[str, Any],
    pythons: Iterable[str] = PYTHONS,
    arches: Iterable[str] = ARCHES,
    glibc: tuple[int, int] = GLIBC,
    known_pure: frozenset[str] = KNOWN_PURE_SDISTS,
) -> list[str]:
    """One line per package version that some target cannot install from a wheel."""
    lock = Lock(lock_data)
    found: list[str] = []
    all_markers = list(lock.markers())
    for python in pythons:
        for arch in arches:
            tags = supported_tags(python, arch, glibc)
            reported: set[tuple[str, str]] = set()
            for full_version in full_versions(python, all_markers):
                target = Target(python, full_version, arch)
                for package in lock.reached(target.environment()):
                    name, version = package["name"], package["version"]
                    if (name, version) in reported or is_local(package):
                        continue
                    if has_wheel(package, tags):
                        continue
                    if not package.get("wheels") and canonicalize_name(name) in known_pure:
                        continue
                    reported.add((name, version))
                    why = f"no wheel for {target.describe()}"
                    if not package.get("wheels"):
                        why += " (only an sdist, not known to be pure Python)"
                    found.append(f"{name} {version}: {why}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lock", nargs="?", type=Path, default=Path("uv.lock"))
    parser.add_argument("--python", action="append", help=f"default: {' '.join(PYTHONS)}")
    parser.add_argument(
        "--glibc",
        default=".".join(map(str, GLIBC)),
        help="newest glibc to allow (default %(default)s)",
    )
    args = parser.parse_args(argv)
    major, minor = (int(part) for part in args.glibc.split("."))
    with args.lock.open("rb") as file:
        data = tomllib.load(file)
    found = problems(data, args.python or PYTHONS, glibc=(major, minor))
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
