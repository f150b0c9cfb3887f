"""Command-line options generated from a config dataclass: one source for a field's flag, type, default and help.

A field takes part when its metadata has a ``"cli"`` entry (``trex_bench.experiment.pipeline.PipelineConfig`` writes
them with ``_cli(help, flag=…, choices=…)``). The flag is ``--field-name`` unless the entry names another (a name
without dashes is an optional positional); the type comes from the field's annotation, or from :data:`VALIDATORS` where
the value needs a range check with a one-line argparse error; the default is the field's (None for a required field, so
that ``--config FILE`` can stand in for it).

>>> import argparse
>>> from trex_bench.experiment.options import PipelineConfig
>>> p = argparse.ArgumentParser()
>>> add_config_options(p, PipelineConfig, only=("seed", "eval_episodes"))
>>> config_kwargs(p.parse_args(["--episodes", "5"]), PipelineConfig, only=("seed", "eval_episodes"))
{'seed': 0, 'eval_episodes': 5}
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from trex_bench.cli.util import positive_int, positive_seconds, seed, torch_device

__all__ = ["add_config_options", "config_kwargs", "config_defaults", "VALIDATORS"]

# Fields whose values need more than their annotation's type: each fails with one argparse line.
VALIDATORS: dict[str, Callable[[str], Any]] = {
    "seed": seed,
    "eval_episodes": positive_int,
    "device": torch_device,
    "max_seconds": positive_seconds,
}
_TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float, "Path": Path}


def _cli_fields(cls: type, only: Iterable[str] | None) -> list[dataclasses.Field]:
    wanted = None if only is None else list(only)
    found = [f for f in dataclasses.fields(cls) if "cli" in f.metadata]
    if wanted is None:
        return found
    by_name = {f.name: f for f in found}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise KeyError(f"{cls.__name__} has no command-line field {', '.join(unknown)}")
    return [by_name[name] for name in wanted]


def _parser(f: dataclasses.Field) -> Callable[[str], Any]:
    if f.name in VALIDATORS:
        return VALIDATORS[f.name]
    base = str(f.type).replace(" | None", "").strip()
    if base not in _TYPES:
        raise TypeError(f"no command-line type for field {f.name}: {f.type}")
    return _TYPES[base]


def _default(f: dataclasses.Field) -> Any:
    return None if f.default is dataclasses.MISSING else f.default


def add_config_options(
    p: argparse.ArgumentParser,
    cls: type,
    only: Iterable[str] | None = None,
    helps: Mapping[str, str] | None = None,
) -> None:
    """Add one option per command-line field of ``cls`` (``only``: these fields, in this order) to ``p``.

    ``helps`` replaces a field's help text where a command means it differently (a sweep's "of every run").
    """
    for f in _cli_fields(cls, only):
        cli = f.metadata["cli"]
        text = (helps or {}).get(f.name, cli["help"])
        flag = cli["flag"] or "--" + f.name.replace("_", "-")
        kwargs: dict[str, Any] = {"type": _parser(f), "default": _default(f), "help": text}
        if cli["choices"] is not None:
            kwargs["choices"] = list(cli["choices"])
        if cli["metavar"] is not None:
            kwargs["metavar"] = cli["metavar"]
        elif flag.startswith("-") and cli["choices"] is None:
            kwargs["metavar"] = flag.lstrip("-").upper().replace("-", "_")  # --episodes N reads EPISODES
        if flag.startswith("-"):
            p.add_argument(flag, dest=f.name, **kwargs)
        else:  # an optional positional (a --config file can stand in for it)
            p.add_argument(f.name, nargs="?", **kwargs)


def config_kwargs(args: argparse.Namespace, cls: type, only: Iterable[str] | None = None) -> dict[str, Any]:
    """The parsed values of ``cls``'s command-line fields, by field name (``cls(**config_kwargs(...))``)."""
    return {f.name: getattr(args, f.name) for f in _cli_fields(cls, only)}


def config_defaults(cls: type, only: Iterable[str] | None = None) -> dict[str, Any]:
    """Each command-line field's default as the parser gives it (None for a required field)."""
    return {f.name: _default(f) for f in _cli_fields(cls, only)}
