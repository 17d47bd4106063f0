"""`@frozen`: the dataclass of a value nothing changes once it is made.

A dataclass with frozen=True sets each field in `__init__` through `object.__setattr__`,
which makes it five times as slow to build as a plain slotted one (a page of 50 todos is 50
of them), and creating the class compiles two more methods (a Lambda cold start creates
forty). `@frozen` makes a slotted dataclass, hashable as a frozen one is, that the type
checker holds frozen: mypy, strict over the source and the tests, refuses every assignment
to a field (`tests/unit/test_values.py`).
"""

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
