"""Stopping a command cleanly: SIGTERM is handled as Ctrl-C is, and what is being saved as it stops is saved whole.

A scheduler, a session's end or a sweep that died stops a process with SIGTERM; Python's default is to die at once.
Inside :func:`sigterm_as_interrupt` (the CLI runs every command in it) SIGTERM raises :class:`Terminated`, a
``KeyboardInterrupt``, so the same code paths handle both: a PPO run saves a checkpoint before it ends
(``rl.ppo.train_ppo``), and a sweep passes the signal on to the run it waits for (``experiment.sweep``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["Terminated", "interrupts_held", "sigterm_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises ``KeyboardInterrupt``. Unlike Ctrl-C it reaches one process, not the
    terminal's whole process group, so a parent passes it on to the child it waits for."""


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()  # only the main thread may set signal handlers


def _restore(signum: int, handler: Any) -> None:
    signal.signal(signum, handler if handler is not None else signal.SIG_DFL)  # None: a handler set outside Python


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block; the previous handler comes back after it (the CLI's
    ``main`` also runs inside tests). Outside the main thread, a no-op."""
    if not _in_main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    before = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        _restore(signal.SIGTERM, before)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM are ignored inside the block: a checkpoint written as a run stops is not torn by a second
    signal (Ctrl-C pressed twice; a sweep passing SIGTERM on to a run that had it already). The caller is stopping
    anyway, so nothing is lost by ignoring them. Outside the main thread, a no-op."""
    if not _in_main_thread():
        yield
        return
    before = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in before.items():
            _restore(signum, handler)
