"""nimbus.values.frozen: classes that are plain slotted dataclasses at runtime and frozen to
the type checker, which is what keeps them unchanged."""

import dataclasses
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from mypy import api as mypy

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


def test_a_value_is_slotted_compared_and_hashed_by_its_fields() -> None:
    @frozen
    class Pair:
        left: int
        right: str

    assert Pair(1, "a") == Pair(1, "a") != Pair(2, "a")
    assert len({Pair(1, "a"), Pair(1, "a"), Pair(2, "a")}) == 2
    assert not hasattr(Pair(1, "a"), "__dict__")
    assert Pair.__slots__ == ("left", "right")


def test_a_todo_is_one_of_them() -> None:
    now = datetime.now(UTC)
    todo = Todo("u", "o", "ann", "milk", TodoState.UNSTARTED, {}, now, now, 1)
    assert dataclasses.replace(todo, version=2).version == 2
    assert todo.version == 1
    with pytest.raises(AttributeError):
        todo.colour = "red"  # type: ignore[attr-defined]  # slotted: no field of that name
