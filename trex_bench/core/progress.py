"""Progress for long work: a live tqdm bar on a terminal, a plain line every ``LOG_INTERVAL_S`` seconds otherwise.

tqdm writes carriage-return frames, which a log file keeps as thousands of lines' worth of one line; when stderr is
not a terminal (a log, a sweep's worker, CI) ``progress_bar`` returns a ``LineProgress`` instead: one ordinary line
(``ppo breakout: 40,960/120,000 step (34%), 245 step/s, 167 s``) at most every ``LOG_INTERVAL_S`` seconds and one
when the work ends. Both take ``update``, ``set_postfix`` and ``close``.

Plain ``tqdm`` (a core dependency), never SB3's ``progress_bar=True``: that one imports ``tqdm.rich`` and ``rich``,
which SB3 only brings with its ``[extra]`` and which a fresh install of this package did not have (the quickstart
died at the PPO stage). ``PPOProgress`` is the SB3 callback that drives the same bar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

__all__ = ["progress_bar", "LineProgress", "PPOProgress", "LOG_INTERVAL_S"]

LOG_INTERVAL_S = 30.0  # a progress line in a log at most this often


class LineProgress:
    """tqdm's ``update``/``set_postfix``/``close`` as plain lines on ``stream``, at most one every ``interval`` s."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str,
        stream: TextIO,
        interval: float = LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc, self.unit, self.stream, self.interval, self.clock = (
            total,
            desc,
            unit,
            stream,
            interval,
            clock,
        )
        self.n = 0
        self.postfix = ""
        self._start = self._last = clock()
        self._closed = False

    def _line(self) -> str:
        elapsed = self.clock() - self._start
        done = f"{self.n:,}" + (f"/{self.total:,}" if self.total else "") + f" {self.unit}"
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        rate = f", {self.n / elapsed:,.1f} {self.unit}/s" if elapsed > 0 else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done}{pct}{rate}, {elapsed:.0f} s{post}\n"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = self.clock()
        if now - self._last >= self.interval:
            self._last = now
            self.stream.write(self._line())
            self.stream.flush()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.stream.write(self._line())
            self.stream.flush()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True, stream: TextIO | None = None) -> Any:
    """A tqdm bar when ``stream`` (default stderr) is a terminal, a ``LineProgress`` when it is not, or a
    disabled tqdm (writes nothing) when ``enabled`` is False."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return tqdm(total=total, disable=True)
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return tqdm(total=total, desc=desc, unit=unit, file=stream, mininterval=0.5, dynamic_ncols=True)
    return LineProgress(total, desc, unit, stream)


class PPOProgress(BaseCallback):
    """SB3 callback: a ``progress_bar`` of agent steps over one ``learn`` call."""

    def __init__(self, total_steps: int, desc: str = "ppo") -> None:
        super().__init__()
        self.total_steps, self.desc = total_steps, desc
        self._bar: Any = None

    def _on_training_start(self) -> None:
        self._bar = progress_bar(self.total_steps, self.desc, "step")

    def _on_step(self) -> bool:
        self._bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self._bar.close()
