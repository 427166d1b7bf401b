"""An asyncio event loop on its own thread, for tests whose driver is synchronous.

Playwright's sync API owns the test thread, while the signaling node and the aiortc peers
need an event loop that keeps running between the test's steps. :class:`LoopThread` runs
that loop on a daemon thread; the test submits coroutines with :meth:`LoopThread.run` and
keeps async context managers (a node, a fake cabin) open with :meth:`LoopThread.hold`.
Each held context lives in one task from entry to exit, so the ``TaskGroup``s and
``asyncio.timeout``s inside it are entered and left by the same task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

_DEFAULT_TIMEOUT_S = 15.0


class LoopThread:
    """A running event loop on a daemon thread; a context manager that stops it on exit."""

    def __init__(self, *, name: str = "test-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._holders: list[tuple[asyncio.Event, concurrent.futures.Future[None]]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def run(self, coroutine: Coroutine[Any, Any, T], *, timeout_s: float = _DEFAULT_TIMEOUT_S) -> T:
        """Run ``coroutine`` on the loop and wait (at most ``timeout_s``) for its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout=timeout_s)
        except TimeoutError:
            future.cancel()
            raise

    def hold(
        self, context: AbstractAsyncContextManager[T], *, timeout_s: float = _DEFAULT_TIMEOUT_S
    ) -> T:
        """Enter ``context`` in a task of its own; it is exited when this LoopThread closes."""
        entered: concurrent.futures.Future[T] = concurrent.futures.Future()
        stop_ready: concurrent.futures.Future[asyncio.Event] = concurrent.futures.Future()

        async def keep() -> None:
            stop = asyncio.Event()
            stop_ready.set_result(stop)
            try:
                async with context as value:
                    entered.set_result(value)
                    await stop.wait()
            except BaseException as exc:
                if not entered.done():
                    entered.set_exception(exc)
                raise

        task = asyncio.run_coroutine_threadsafe(keep(), self._loop)
        stop = stop_ready.result(timeout=timeout_s)
        self._holders.append((stop, task))
        return entered.result(timeout=timeout_s)

    def close(self, *, timeout_s: float = _DEFAULT_TIMEOUT_S) -> None:
        """Exit the held contexts, newest first, then stop the loop and join the thread."""
        if not self._thread.is_alive():
            return
        errors: list[BaseException] = []
        while self._holders:
            stop, task = self._holders.pop()
            self._loop.call_soon_threadsafe(stop.set)
            try:
                task.result(timeout=timeout_s)
            except BaseException as exc:  # reported once the loop has stopped
                errors.append(exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=timeout_s)
        if errors:
            raise errors[0]

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._cancel_leftovers()
            self._loop.close()

    def _cancel_leftovers(self) -> None:
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
