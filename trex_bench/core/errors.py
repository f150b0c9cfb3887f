"""The package's errors: what the CLI may print as one line.

Every error a *user* can cause (a bad option, a bad file, a run folder in the wrong state) is a
:class:`TrexBenchError`; ``trex-bench`` prints it as ``trex-bench: error: …`` and exits 2 (``--debug`` shows the
traceback). Anything else is a bug and keeps its traceback. The subclasses are also ``ValueError``\\ s, so callers
that caught ``ValueError`` before this hierarchy existed still catch them.
"""

from __future__ import annotations

__all__ = ["TrexBenchError", "ConfigError", "DemoError", "DataError", "RunFolderError", "LabelsPending"]


class TrexBenchError(Exception):
    """A user error: bad input, named in one line."""


class ConfigError(TrexBenchError, ValueError):
    """An option or config value that cannot run (unknown name, out of range, options that do not go together)."""


class DemoError(TrexBenchError, ValueError):
    """A demo set that cannot be used: a malformed manifest or episode file, another game or profile, ..."""


class DataError(TrexBenchError, ValueError):
    """Any other input file that cannot be used: a reward model, agent, card, label CSV or leaderboard."""


class RunFolderError(TrexBenchError, ValueError):
    """A run or stage folder in a state that would need overwriting (finished, made by another config, tampered)."""


class LabelsPending(TrexBenchError):
    """A run paused for answers it needs before it can go on (the online loop's first batch of preference queries);
    the message says where to give them and how to resume. Everything it wrote so far is whole."""
