"""Progress output: a tqdm bar on a terminal, a plain line every N seconds in a log (no carriage returns)."""

from __future__ import annotations

import io

from tqdm import tqdm

from trex_bench.core.progress import LOG_INTERVAL_S, LineProgress, progress_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_gets_a_plain_line_every_interval():
    now = [0.0]
    log = io.StringIO()
    bar = LineProgress(1000, "ppo breakout", "step", log, interval=30.0, clock=lambda: now[0])
    for _ in range(100):  # 100 updates of 10 steps, one a second: lines at 30, 60, 90 s and at close
        now[0] += 1.0
        bar.update(10)
    bar.set_postfix(loss=0.5)
    bar.close()
    bar.close()  # a second close writes nothing
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 4
    assert lines[0] == "ppo breakout: 300/1,000 step (30%), 10.0 step/s, 30 s"
    assert lines[-1] == "ppo breakout: 1,000/1,000 step (100%), 10.0 step/s, 100 s, loss=0.5"


def test_progress_bar_picks_tqdm_only_on_a_terminal():
    log, term = io.StringIO(), _Terminal()
    assert isinstance(progress_bar(10, "x", "ep", stream=log), LineProgress)
    bar = progress_bar(10, "x", "ep", stream=term)
    assert isinstance(bar, tqdm)
    bar.update(5)
    bar.close()
    assert "\r" in term.getvalue()  # a live bar redraws in place
    quiet = progress_bar(10, "x", "ep", enabled=False, stream=log)
    quiet.update(10)
    quiet.close()
    assert log.getvalue() == ""
    assert LOG_INTERVAL_S >= 10
