"""`@frozen`: the dataclass of a value nothing changes once it is made.

A dataclass with frozen=True sets each field in `__init__` through `object.__setattr__`,
which makes it five times as slow to build as a plain slotted one (a page of 50 todos is 50
of them). `@frozen` makes a slotted dataclass that the type checker holds frozen: mypy,
strict over the source and the tests, refuses every assignment to a field
(`tests/unit/test_values.py`).

Python 3.11 compiles each method a dataclass generates with an `exec` of its own, about a
fifth of a millisecond apiece, and a Lambda cold start creates forty of these classes. So
only `__init__` is generated; equality, the hash and the repr are the functions below, shared
by every value class and reading its fields through one `operator.attrgetter`. They behave as
the generated ones do: equal when of the same class with equal fields, hashed by the fields,
and a repr of the fields in order, each honouring `field(compare=, hash=, repr=)`; a class's
own method stays.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any, TypeVar, cast, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen(cls: type[T]) -> type[T]:
    made: Any = dataclass(slots=True, eq=False, repr=False)(cls)
    every = fields(made)
    made._compared = _tuple_of([item.name for item in every if item.compare])
    made._hashed = _tuple_of(
        [item.name for item in every if (item.compare if item.hash is None else item.hash)]
    )
    made._shown = tuple(item.name for item in every if item.repr)
    # A class's own methods stay, as the standard library's decorator leaves them; the
    # __hash__ = None that Python puts beside a class's own __eq__ is not one of them.
    own = {name for name in ("__eq__", "__hash__", "__repr__") if name in cls.__dict__}
    if "__eq__" in own and cls.__dict__["__hash__"] is None:
        own.remove("__hash__")
    for name, shared in (("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr)):
        if name not in own:
            setattr(made, name, shared)
    return cast(type[T], made)


def _tuple_of(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """A function from a value to the tuple of its fields, as a static method."""
    if len(names) == 1:
        one = attrgetter(names[0])
        return staticmethod(lambda value: (one(value),))
    return staticmethod(attrgetter(*names) if names else lambda value: ())


def _eq(self: Any, other: Any) -> object:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return self._compared(self) == other._compared(other)


def _hash(self: Any) -> int:
    return hash(self._hashed(self))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._shown)
    return f"{self.__class__.__qualname__}({shown})"
