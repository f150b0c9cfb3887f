"""Type checks of a frozen config dataclass's fields from their annotations: one check, whatever built the config.

A config comes from a budget preset, from command-line options or from a JSON file (``pipeline --config``); only
the first is sure to hold the right types. :func:`check_fields` checks every field against its annotation, so a
``"many"`` for an int, a ``true`` for a seed, a string for a float or a NaN/±inf anywhere is refused in one line
naming the field, before any range check compares it with a number.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class C:
...     steps: int
...     lr: float
...     cap: float | None = None
...     def __post_init__(self) -> None:
...         check_fields(self)
>>> C(steps=3, lr=1).lr
1
>>> C(steps="many", lr=1.0)
Traceback (most recent call last):
...
trex_bench.core.errors.ConfigError: C.steps must be an integer, got 'many'
"""

from __future__ import annotations

import ast
import dataclasses
import math
from typing import Any

from trex_bench.core.errors import ConfigError

__all__ = ["check_fields", "check_range"]

_WORDS = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "a string"}


def _fits(kind: str, value: Any) -> bool:
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("Literal["):
        return value in _literal(kind)
    return True  # Any, Path, a class: checked by the dataclass itself


def _literal(kind: str) -> tuple[Any, ...]:
    values = ast.literal_eval(kind.removeprefix("Literal")) if kind.startswith("Literal[") else []
    return tuple(values)  # Literal["a", "b"] reads as the list ["a", "b"]


def _describe(kinds: list[str]) -> str:
    words = [
        "one of " + ", ".join(map(str, _literal(k))) if k.startswith("Literal[") else _WORDS.get(k, k) for k in kinds
    ]
    return " or ".join(words)


def check_fields(obj: Any) -> None:
    """Check every field of the dataclass instance ``obj`` against its annotation (``int``, ``float`` (finite),
    ``bool``, ``str``, ``Literal[...]``, each optionally ``| None``); other annotations pass.

    Raises:
        ConfigError: ``<Class>.<field> must be <what>, got <value>``.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        kinds = [k.strip() for k in str(f.type).split("|")] if "Literal[" not in str(f.type) else [str(f.type)]
        if value is None and "None" in kinds:
            continue
        kinds = [k for k in kinds if k != "None"]
        if not any(_fits(k, value) for k in kinds):
            raise ConfigError(f"{type(obj).__name__}.{f.name} must be {_describe(kinds)}, got {value!r}")


def check_range(obj: Any, name: str, lo: float | None = None, hi: float | None = None, open_lo: bool = False) -> None:
    """Refuse ``obj.<name>`` (a number, already type-checked; None passes) outside ``[lo, hi]`` (``(lo, hi]`` with
    ``open_lo``).

    Raises:
        ConfigError: ``<Class>.<name> must be > 0, got -1``.
    """
    v = getattr(obj, name)
    if v is None:
        return
    low_bad = lo is not None and (v <= lo if open_lo else v < lo)
    if low_bad or (hi is not None and v > hi):
        parts = [f"{'>' if open_lo else '>='} {lo:g}" if lo is not None else "", f"<= {hi:g}" if hi is not None else ""]
        raise ConfigError(f"{type(obj).__name__}.{name} must be {' and '.join(p for p in parts if p)}, got {v!r}")
