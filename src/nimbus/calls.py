"""How the API runs a call into the services: on the event loop, or in a worker thread.

A call that can wait (on a network store, a write lock, a password hash, an identity provider)
runs in a worker thread, so that the event loop serves other requests meanwhile. A call that
cannot wait runs on the loop: the hop to a thread costs more than it does. Which calls cannot
wait is decided once, when the app is built, from what the store and the runtime declare
(nimbus.bootstrap picks the runner); every route makes its calls through that runner.
"""

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, Protocol, TypeVar

from nimbus.services.reads import is_read_only

P = ParamSpec("P")
T = TypeVar("T")

# The worker threads, as many as anyio's default (Starlette's thread pool). The loop's own
# executor hands a call over for half the CPU of anyio's to_thread, which checks its
# backend, limiter and cancel scope at each call; a store call needs none of them.
_WORKERS = ThreadPoolExecutor(max_workers=40, thread_name_prefix="nimbus-call")


def run_in_threadpool(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
    """`call` in a worker thread, in a copy of this context (its trace span, say)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(
        _WORKERS, partial(context.run, call, *args, **kwargs)
    )


class Run(Protocol):
    """Runs `call(*args, **kwargs)` for a coroutine and returns its result."""

    def __call__(self, call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        """The call's result, or its exception."""
        ...


async def on_loop(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Every call on the event loop: for a runtime that serves one request at a time (Lambda),
    where nothing else waits for the loop."""
    return call(*args, **kwargs)


async def in_threads(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Every call in a worker thread: for a store whose every call may wait."""
    return await run_in_threadpool(call, *args, **kwargs)


async def reads_on_loop(call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Reads on the event loop, everything else in a worker thread: for a store whose reads
    never wait (an embedded file), where writes still wait for its write lock."""
    if is_read_only(call):
        return call(*args, **kwargs)
    return await run_in_threadpool(call, *args, **kwargs)


def runner(*, inline_reads: bool, one_request_at_a_time: bool) -> Run:
    if one_request_at_a_time:
        return on_loop
    return reads_on_loop if inline_reads else in_threads
