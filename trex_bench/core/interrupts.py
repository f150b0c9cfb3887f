"""Stopping a command cleanly: SIGTERM is handled as Ctrl-C is, and a PPO run stops where its state is whole.

A scheduler, a session's end or a sweep that died stops a process with SIGTERM; Python's default is to die at once.
Inside :func:`sigterm_as_interrupt` (the CLI runs every command in it) SIGTERM raises :class:`Terminated`, a
``KeyboardInterrupt``, so the same code paths handle both. Work that can only stop at some points (a PPO update half
applied is no state to go on from) runs inside :func:`stop_requests` instead: the first signal is only noted, and the
work stops at its next safe point (``rl.ppo.train_ppo`` saves a checkpoint there) and raises it then.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

__all__ = ["StopRequest", "Terminated", "sigterm_as_interrupt", "stop_requests"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt``. Unlike Ctrl-C it reaches one process, not the
    terminal's whole process group, so a parent passes it on to the children it waits for."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # only the main thread may set signal handlers


def _restore(signum: int, handler: Any) -> None:
    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)  # None: a handler set outside Python


def _raise_for(signum: int) -> NoReturn:
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block; the previous handler comes back after it (the CLI's
    ``main`` also runs inside tests). Outside the main thread, a no-op."""
    if not _in_main_thread():
        yield
        return
    before = signal.signal(signal.SIGTERM, lambda signum, frame: _raise_for(signum))
    try:
        yield
    finally:
        _restore(signal.SIGTERM, before)


class StopRequest:
    """What :func:`stop_requests` noted: ``signal`` is None until a first Ctrl-C or SIGTERM arrives."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def raise_it(self) -> NoReturn:
        """Raise what the noted signal would have: ``KeyboardInterrupt`` (Ctrl-C) or :class:`Terminated`."""
        assert self.signal is not None
        _raise_for(self.signal)


@contextlib.contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Inside the block the first Ctrl-C or SIGTERM is only noted in the yielded :class:`StopRequest`; the caller
    checks it at its safe points, stops there and calls ``raise_it``. A second Ctrl-C raises at once (a person who
    will not wait); a second SIGTERM is ignored (a scheduler repeating itself, or a sweep passing on the SIGTERM its
    run had already: neither should cut the stop short). The previous handlers come back after the block. Outside
    the main thread signals cannot be caught: nothing is ever noted."""
    request = StopRequest()
    if not _in_main_thread():
        yield request
        return

    def note(signum: int, frame: object) -> None:
        if request.signal is None:
            request.signal = signum
        elif signum == signal.SIGINT:
            _raise_for(signum)

    before = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for signum, handler in before.items():
            _restore(signum, handler)
