"""nimbus.values.frozen: classes that are plain slotted dataclasses at runtime and frozen to
the type checker, which is what keeps them unchanged."""

import dataclasses
import importlib
import pkgutil
import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mypy import api as mypy

import nimbus
from nimbus.domain.todos import Todo, TodoState
from nimbus.values import frozen


def _mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    module = tmp_path / "probe.py"
    module.write_text(textwrap.dedent(source))
    out, err, status = mypy.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(module)]
    )
    return out + err, status


def test_the_type_checker_refuses_an_assignment_to_a_field(tmp_path: Path) -> None:
    out, status = _mypy(
        tmp_path,
        """
        from dataclasses import field
        from nimbus.domain.todos import Todo
        from nimbus.values import frozen

        @frozen
        class Pair:
            left: int
            right: list[int] = field(default_factory=list)

        def change(todo: Todo, pair: Pair) -> None:
            todo.description = "changed"
            pair.left = 2
            Pair(1, [2]), Pair(1), Pair(left=1, right=[])
        """,
    )
    assert status == 1, out
    refused = [line for line in out.splitlines() if ": error:" in line]
    assert len(refused) == 2, out
    assert all("read-only" in line for line in refused), out


def test_the_same_source_without_the_assignments_type_checks(tmp_path: Path) -> None:
    out, status = _mypy(
        tmp_path,
        """
        import dataclasses
        from nimbus.domain.todos import Todo

        def changed(todo: Todo) -> Todo:
            return dataclasses.replace(todo, description="changed")
        """,
    )
    assert status == 0, out


@frozen
class Trio:
    left: int
    right: str
    hidden: str = dataclasses.field(default="", repr=False)
    uncompared: int = dataclasses.field(default=0, compare=False)
    unhashed: int = dataclasses.field(default=0, hash=False)


@dataclasses.dataclass(frozen=True)
class DataclassTrio:
    """Trio as the standard library makes it: what @frozen's methods must match."""

    left: int
    right: str
    hidden: str = dataclasses.field(default="", repr=False)
    uncompared: int = dataclasses.field(default=0, compare=False)
    unhashed: int = dataclasses.field(default=0, hash=False)


@frozen
class One:
    only: float


@dataclasses.dataclass(frozen=True)
class DataclassOne:
    only: float


small = st.integers(-2, 2)
values = st.tuples(small, st.sampled_from(["", "a", "é'\"\n"]), st.text(max_size=2), small, small)


@settings(max_examples=300, deadline=None)
@given(first=values, second=values)
def test_equality_hash_and_repr_are_the_standard_librarys(
    first: tuple[int, str, str, int, int], second: tuple[int, str, str, int, int]
) -> None:
    ours, theirs = Trio(*first), DataclassTrio(*first)
    other, their_other = Trio(*second), DataclassTrio(*second)
    assert (ours == other) == (theirs == their_other)
    assert (ours != other) == (theirs != their_other)
    assert hash(ours) == hash(theirs)
    assert repr(ours) == repr(theirs).replace("DataclassTrio", "Trio")
    assert ours != cast(object, theirs)  # another class, however alike
    assert dataclasses.astuple(ours) == dataclasses.astuple(theirs)


@given(first=st.floats(allow_nan=True), second=st.floats(allow_nan=True))
def test_a_value_of_one_field_compares_as_a_tuple_of_one(first: float, second: float) -> None:
    assert (One(first) == One(second)) == (DataclassOne(first) == DataclassOne(second))
    assert hash(One(first)) == hash(DataclassOne(first))
    nan = float("nan")
    assert One(nan) == One(nan)  # the same object, as in a tuple
    assert repr(One(1.5)) == "One(only=1.5)"


def test_a_value_is_slotted_and_keeps_its_own_repr() -> None:
    @frozen
    class Secret:
        value: str

        def __repr__(self) -> str:
            return "Secret(...)"

    assert not hasattr(Trio(1, "a"), "__dict__")
    assert Trio.__slots__ == ("left", "right", "hidden", "uncompared", "unhashed")  # type: ignore[attr-defined]
    assert repr(Secret("hush")) == "Secret(...)"
    assert len({Trio(1, "a"), Trio(1, "a"), Trio(2, "a")}) == 2
    assert Trio(1, "a") != cast(object, (1, "a", ""))


def test_a_todo_is_one_of_them() -> None:
    now = datetime.now(UTC)
    todo = Todo("u", "o", "ann", "milk", TodoState.UNSTARTED, {}, now, now, 1)
    assert dataclasses.replace(todo, version=2).version == 2
    assert todo.version == 1
    with pytest.raises(AttributeError):
        todo.colour = "red"  # type: ignore[attr-defined]  # slotted: no field of that name


def test_a_class_keeps_its_own_equality_and_hash() -> None:
    @frozen
    class Loose:
        value: str

        def __eq__(self, other: object) -> bool:
            return isinstance(other, Loose)

    @frozen
    class Counted:
        value: str

        def __hash__(self) -> int:
            return 7

    assert Loose("a") == Loose("b")
    assert hash(Loose("a")) == hash(("a",))  # generated, as for a frozen dataclass
    assert hash(Counted("a")) == 7
    assert Counted("a") != Counted("b")


# Field names that hold, or may hold, something secret; and those of them that do not.
SECRET = re.compile(r"secret|password|token|key|hash|signer|verifier|otpauth|qr_svg|code")
NOT_SECRET = {"access_key_id", "token_id", "public_key", "recovery_codes_left", "keys",
              "passkeys", "passkey"}  # fmt: skip


def _values_of_nimbus() -> dict[str, type]:
    found = {}
    for module in pkgutil.walk_packages(nimbus.__path__, "nimbus."):
        # The Lambda handler switches the collector off as it loads; migrations run in Alembic.
        if module.name.startswith(("nimbus.entrypoints.aws", "nimbus.storage.migrations")):
            continue
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if isinstance(value, type) and "_shown" in value.__dict__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def test_no_value_of_nimbus_shows_a_secret_in_its_repr() -> None:
    found = _values_of_nimbus()
    assert len(found) >= 40, sorted(found)  # every module was walked
    shown = {
        f"{name}.{field}"
        for name, cls in found.items()
        for field in cast(Any, cls)._shown
        if SECRET.search(field) and field not in NOT_SECRET
    }
    assert shown == set()
