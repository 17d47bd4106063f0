"""Where the runners of nimbus.calls run a call, and the guard that holds the API to them."""

import asyncio
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from nimbus.calls import in_threads, on_loop, reads_on_loop, runner
from nimbus.services.reads import is_read_only, read_only
from nimbus.storage import open_storage
from tests.loop_guard import BlockedTheLoop, guard_the_loop

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine's result, on a loop of its own: asyncio.run would also replace (and
    drop, unclosed) the loop another library keeps as this thread's current one."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


class Service:
    @read_only
    def read(self) -> int:
        return threading.get_ident()

    def write(self) -> int:
        return threading.get_ident()


def _thread_of(run: object, method: str) -> bool:
    """Whether the call ran on the event loop's own thread."""

    async def main() -> bool:
        here = threading.get_ident()
        service = Service()
        ran = await run(getattr(service, method))  # type: ignore[operator]
        return bool(ran == here)

    return _run(main())


def test_a_bound_method_carries_its_mark() -> None:
    assert is_read_only(Service().read)
    assert not is_read_only(Service().write)


@pytest.mark.parametrize(
    ("run", "read_on_loop", "write_on_loop"),
    [(on_loop, True, True), (reads_on_loop, True, False), (in_threads, False, False)],
)
def test_each_runner_runs_reads_and_writes_where_it_says(
    run: object, read_on_loop: bool, write_on_loop: bool
) -> None:
    assert _thread_of(run, "read") is read_on_loop
    assert _thread_of(run, "write") is write_on_loop


def test_the_runner_follows_the_store_and_the_runtime() -> None:
    assert runner(inline_reads=True, one_request_at_a_time=False) is reads_on_loop
    assert runner(inline_reads=False, one_request_at_a_time=False) is in_threads
    assert runner(inline_reads=False, one_request_at_a_time=True) is on_loop


def test_a_runner_passes_on_the_call_s_exception() -> None:
    def fails() -> None:
        raise LookupError("gone")

    for run in (on_loop, reads_on_loop, in_threads):
        with pytest.raises(LookupError, match="gone"):
            _run(run(fails))


@pytest.mark.parametrize("inline_reads", [True, False])
def test_the_guard_refuses_a_store_call_that_would_block_the_loop(
    tmp_path: Path, inline_reads: bool
) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'nimbus.db'}")
    storage.create_schema()
    storage.inline_reads = inline_reads  # as a network store declares
    guarded = guard_the_loop(storage)

    async def on_the_loop() -> None:
        if inline_reads:
            assert guarded.todos.list("someone", state=None, limit=5, cursor=None).items == []
        else:
            with pytest.raises(BlockedTheLoop, match=r"todos\.list"):
                guarded.todos.list("someone", state=None, limit=5, cursor=None)
        with pytest.raises(BlockedTheLoop, match=r"rate_limits\.take"):
            guarded.rate_limits.take("k", 1, 1, datetime.now(UTC))
        with pytest.raises(BlockedTheLoop, match="ping"):
            guarded.ping()

    try:
        _run(on_the_loop())
        # Off the loop (a worker thread, the CLI, a test's own set-up) everything runs.
        guarded.ping()
    finally:
        storage.close()
